//! Settings whose value is one of a few words (`host_key_check`, `puppetfile`, `become`): one
//! macro makes the enum, its spelling, `Display`, `FromStr` and the parse error that lists
//! the words, so that each such setting is written once.

/// Declares a settings enum with one spelling per variant, in the order error messages list
/// them:
///
/// ```text
/// choice! {
///     /// Doc.
///     pub enum Name / ParseNameError {
///         /// Doc.
///         #[default]
///         A = "a",
///         B = "b",
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident / $error:ident {
            $(
                $(#[$attr:meta])*
                $variant:ident = $spelling:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
        pub enum $name {
            $(
                $(#[$attr])*
                #[serde(rename = $spelling)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the order error messages list them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in the inventory.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[doc = concat!("The value was not one of [`", stringify!($name), "`]'s spellings.")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $error;

        impl ::std::fmt::Display for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str("expected one of: ")?;
                for (i, v) in $name::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(v.as_str())?;
                }
                Ok(())
            }
        }

        impl ::std::error::Error for $error {}

        impl ::std::str::FromStr for $name {
            type Err = $error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or($error)
            }
        }
    };
}
