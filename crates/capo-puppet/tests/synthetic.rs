//! Shapes the fixtures don't cover: older Ruby-object reports, tags, anchors, hostile input, and
//! reports of big catalogs.

use capo_puppet::{parse_report, parse_summary, ParseError, ResourceEvent, MAX_DEPTH};

/// The shape of a Puppet 3/4 report: every object tagged, symbols, `!binary` values, a Psych
/// anchor shared between two logs, a status without `resource`, and a null status.
const RUBY_OBJECTS_REPORT: &str = r#"--- !ruby/object:Puppet::Transaction::Report
  kind: apply
  status: !ruby/sym failed
  logs:
    - !ruby/object:Puppet::Util::Log
      level: !ruby/sym err
      message: "boom"
      source: Puppet
      tags: &1 !ruby/object:Puppet::Util::TagSet
        hash:
          err: true
      time: 2014-01-01 10:00:00.123456 +00:00
    - !ruby/object:Puppet::Util::Log
      level: !ruby/sym crit
      message: "worse"
      source: Puppet
      tags: *1
    - !ruby/object:Puppet::Util::Log
      level: notice
      source: "no message: dropped"
  resource_statuses:
    "File[/etc/motd]": !ruby/object:Puppet::Resource::Status
      resource: "File[/etc/motd]"
      events:
        - !ruby/object:Puppet::Transaction::Event
          property: ensure
          previous_value: !ruby/sym absent
          desired_value: !ruby/sym file
          status: success
          message: created
        - !ruby/object:Puppet::Transaction::Event
          property: content
          previous_value: !binary |-
            e21kNX0xMjM=
          desired_value: !binary |-
            //79
          status: failure
    Service[sshd]: !ruby/object:Puppet::Resource::Status
      events:
        - property: ensure
          previous_value: stopped
          desired_value: running
          status: noop
          message: would start
        - property: enable
          previous_value: false
          desired_value: true
          status: audit
          message: audited
        - property: weight
          previous_value: 1.5
          desired_value: 10
          status: noop
          message: ''
        - property: members
          previous_value: []
          desired_value: [a, !ruby/sym b, [c, d]]
          status: noop
          message: x
    Exec[gone]:
"#;

fn ev(
    resource: &str,
    property: &str,
    previous: Option<&str>,
    desired: Option<&str>,
    status: &str,
    message: &str,
) -> ResourceEvent {
    ResourceEvent {
        resource: resource.into(),
        property: Some(property.into()),
        previous: previous.map(Into::into),
        desired: desired.map(Into::into),
        status: status.into(),
        message: message.into(),
    }
}

#[test]
fn ruby_tagged_report_with_symbols_binary_and_anchors() {
    let r = parse_report(RUBY_OBJECTS_REPORT).expect("parses");
    assert_eq!(r.status.as_deref(), Some("failed"));
    assert_eq!(r.noop, None);
    assert_eq!(r.noop_pending, None);
    assert_eq!(r.errors, vec!["boom".to_string(), "worse".to_string()]);
    assert_eq!(r.logs.len(), 2);
    assert_eq!(
        r.logs[0].time.as_deref(),
        Some("2014-01-01 10:00:00.123456 +00:00")
    );
    assert_eq!(
        r.events,
        vec![
            ev(
                "File[/etc/motd]",
                "ensure",
                Some("absent"),
                Some("file"),
                "success",
                "created"
            ),
            // UTF-8 binary decoded, other bytes kept as base64; a missing message is empty.
            ev(
                "File[/etc/motd]",
                "content",
                Some("{md5}123"),
                Some("//79"),
                "failure",
                ""
            ),
            // No `resource` field: the key names the resource.
            ev(
                "Service[sshd]",
                "ensure",
                Some("stopped"),
                Some("running"),
                "noop",
                "would start"
            ),
            ev(
                "Service[sshd]",
                "enable",
                Some("false"),
                Some("true"),
                "audit",
                "audited"
            ),
            ev(
                "Service[sshd]",
                "weight",
                Some("1.5"),
                Some("10"),
                "noop",
                ""
            ),
            ev(
                "Service[sshd]",
                "members",
                Some(""),
                Some("a, b, [c, d]"),
                "noop",
                "x"
            ),
        ]
    );
}

#[test]
fn report_without_resource_statuses() {
    // What an agent writes when the catalog does not compile: logs, no resources.
    let yaml = "--- !ruby/object:Puppet::Transaction::Report\nreport_format: 12\nstatus: failed\n\
                logs:\n- level: err\n  message: 'Could not retrieve catalog'\n  source: Puppet\n\
                resource_statuses: {}\n";
    let r = parse_report(yaml).expect("parses");
    assert_eq!(r.status.as_deref(), Some("failed"));
    assert!(r.events.is_empty());
    assert_eq!(r.errors, vec!["Could not retrieve catalog".to_string()]);
}

#[test]
fn partial_summary_counts_missing_sections_as_zero() {
    let s = parse_summary(
        "---\nversion:\n  config: a1b2c3\n  puppet: '8.0'\ntime:\n  last_run: 1700000000\n",
    )
    .expect("parses");
    assert_eq!(s.config_version.as_deref(), Some("a1b2c3"));
    assert_eq!(s.puppet_version.as_deref(), Some("8.0"));
    assert_eq!(s.last_run, Some(1_700_000_000));
    assert_eq!(s.time_total_ms, None);
    assert_eq!(s.resources.total, 0);
    assert_eq!(s.events.total, 0);
    // Unquoted numbers keep their spelling when read as version strings.
    let s = parse_summary("version:\n  puppet: 8.10\n  config: 0042\n").expect("parses");
    assert_eq!(s.puppet_version.as_deref(), Some("8.10"));
    assert_eq!(s.config_version.as_deref(), Some("0042"));
}

#[test]
fn summary_serializes_for_the_json_report() {
    let s = parse_summary("resources:\n  total: 3\n  failed: 1\ntime:\n  total: 1.2345\n")
        .expect("parses");
    let json = serde_json::to_value(&s).expect("serializes");
    assert_eq!(json["resources"]["failed"], 1);
    assert_eq!(json["time_total_ms"], 1235);
    assert_eq!(json["config_version"], serde_json::Value::Null);
}

#[test]
fn garbage_is_an_error() {
    let cases: &[&str] = &[
        "",
        "  \n\t\n",
        "# only a comment\n",
        "just a string",
        "[1, 2, 3]",
        "foo: bar\n",
        "{",
        "resources: [\n",
        "resources:\n  total: -1\n",
        "resources:\n  total: lots\n",
        "status: [a]\n",
        "status: ok\n---\nstatus: ok\n",
        "time:\n  total: *nope\n",
        "\u{0}\u{1}\u{2}",
        "--- !ruby/object:Puppet::Transaction::Report\n",
    ];
    for case in cases {
        assert!(parse_summary(case).is_err(), "summary {case:?}");
        assert!(parse_report(case).is_err(), "report {case:?}");
    }
    assert_eq!(parse_summary(" \n"), Err(ParseError::Empty));
    assert_eq!(
        parse_report("foo: bar\n"),
        Err(ParseError::NotPuppet { expected: "report" })
    );
    assert_eq!(
        parse_summary("foo: bar\n"),
        Err(ParseError::NotPuppet {
            expected: "last run summary"
        })
    );
    assert!(matches!(
        parse_summary("resources:\n  total: -1\n"),
        Err(ParseError::Yaml(_))
    ));
}

#[test]
fn deep_nesting_is_rejected_not_a_stack_overflow() {
    let too_deep = ParseError::TooDeep { max: MAX_DEPTH };

    // Block style, one level past the limit, under a key the parsers skip (`metrics`): skipped
    // parts must be as safe as the ones read.
    let mut block = String::from("metrics:\n");
    for level in 1..=MAX_DEPTH + 1 {
        block.push_str(&" ".repeat(level));
        block.push_str("- \n");
    }
    assert_eq!(parse_report(&block).err(), Some(too_deep.clone()));
    assert_eq!(parse_summary(&block).err(), Some(too_deep.clone()));

    // Flow style, far past any stack.
    let flow = format!("metrics: {}{}", "[".repeat(200_000), "]".repeat(200_000));
    assert_eq!(parse_report(&flow).err(), Some(too_deep.clone()));
    assert_eq!(parse_summary(&flow).err(), Some(too_deep.clone()));

    // Nested mappings inside an event value.
    let mut value = String::from("x");
    for _ in 0..MAX_DEPTH + 5 {
        value = format!("{{k: {value}}}");
    }
    let yaml = format!(
        "status: changed\nresource_statuses:\n  File[/a]:\n    events:\n    - desired_value: {value}\n"
    );
    assert_eq!(parse_report(&yaml).err(), Some(too_deep.clone()));

    // Nesting within the limit is fine.
    let yaml = format!(
        "status: changed\nresource_statuses:\n  File[/a]:\n    events:\n    - desired_value: {}1{}\n",
        "[".repeat(20),
        "]".repeat(20)
    );
    let r = parse_report(&yaml).expect("20 levels parse");
    assert_eq!(
        r.events[0].desired.as_deref(),
        Some(&*format!("{}1{}", "[".repeat(19), "]".repeat(19)))
    );
}

/// A report the size of a big catalog's: well past the YAML crate's default budget of 250k
/// nodes, which the parser must scale with the input instead of refusing.
#[test]
fn big_report_parses() {
    const RESOURCES: usize = 15_000;
    let mut yaml = String::from(
        "--- !ruby/object:Puppet::Transaction::Report\nstatus: changed\nlogs: []\nresource_statuses:\n",
    );
    for i in 0..RESOURCES {
        yaml.push_str(&format!(
            "  File[/srv/f{i}]:\n    title: \"/srv/f{i}\"\n    resource: File[/srv/f{i}]\n    \
             containment_path:\n    - Stage[main]\n    - Main\n    - File[/srv/f{i}]\n    tags:\n    \
             - file\n    - class\n    failed: false\n    changed: true\n    events:\n    \
             - audited: false\n      property: mode\n      previous_value: '0644'\n      \
             desired_value: '0600'\n      message: mode changed '0644' to '0600'\n      \
             status: success\n      redacted:\n      corrective_change: false\n"
        ));
    }
    assert!(yaml.len() > 5_000_000, "{}", yaml.len());
    let r = parse_report(&yaml).expect("big report parses");
    assert_eq!(r.events.len(), RESOURCES);
    assert_eq!(
        r.events[RESOURCES - 1].resource,
        format!("File[/srv/f{}]", RESOURCES - 1)
    );
    assert_eq!(r.events[RESOURCES - 1].desired.as_deref(), Some("0600"));
}
