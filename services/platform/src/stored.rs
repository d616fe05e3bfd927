//! Enums kept in the database as lower-case text and sent on the wire as
//! proto enums: one declaration, [`stored_enum!`](crate::stored_enum), gives
//! both spellings and the checks of a proto value a client sent.

/// An enum stored as text and sent as a proto enum. Made by
/// [`stored_enum!`](crate::stored_enum); read from a request with
/// [`Reader::enumerated`](crate::request::Reader::enumerated).
pub trait StoredEnum: Sized + Copy + Eq + std::hash::Hash + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];

    /// The stored spelling.
    fn as_str(self) -> &'static str;

    /// The value stored as `text`; `None` for text this version never wrote.
    fn from_stored(text: &str) -> Option<Self>;

    /// A required proto value: UNSPECIFIED and unknown numbers are refused
    /// with the message a client sees.
    fn from_proto(value: i32) -> Result<Self, &'static str>;

    /// The proto number.
    fn to_proto(self) -> i32;
}

/// Declares an enum stored as lower-case text and sent as a proto enum:
///
/// ```
/// # mod pb { #[derive(Clone, Copy, Debug, PartialEq, Eq)] #[repr(i32)]
/// #   pub enum Colour { Unspecified = 0, Red = 1, DeepBlue = 2 }
/// #   impl TryFrom<i32> for Colour { type Error = ();
/// #     fn try_from(v: i32) -> Result<Self, ()> { match v { 0 => Ok(Self::Unspecified),
/// #       1 => Ok(Self::Red), 2 => Ok(Self::DeepBlue), _ => Err(()) } } } }
/// medsec_platform::stored_enum!(
///     /// A colour.
///     Colour, pb::Colour, {
///         Red => "red", Red,
///         DeepBlue => "deep_blue", DeepBlue,
///     }
/// );
/// assert_eq!(Colour::from_stored("deep_blue"), Some(Colour::DeepBlue));
/// assert_eq!(Colour::from_proto(0), Err("is required"));
/// assert_eq!(Colour::Red.to_proto(), 1);
/// ```
#[macro_export]
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident, $pb:ty, { $($variant:ident => $text:literal, $pbv:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The value stored as `text`.
            pub fn from_stored(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }

            /// A required proto value: UNSPECIFIED and unknown numbers are refused.
            pub fn from_proto(value: i32) -> Result<Self, &'static str> {
                match <$pb>::try_from(value) {
                    $(Ok(<$pb>::$pbv) => Ok(Self::$variant),)+
                    #[allow(unreachable_patterns)]
                    Ok(_) => Err($crate::request::message::REQUIRED),
                    Err(_) => Err($crate::request::message::UNKNOWN_VALUE),
                }
            }

            /// The proto number.
            pub fn to_proto(self) -> i32 {
                (match self { $(Self::$variant => <$pb>::$pbv),+ }) as i32
            }

            /// The proto number of stored text; UNSPECIFIED (0) for text this
            /// version never wrote.
            pub fn stored_to_proto(text: &str) -> i32 {
                Self::from_stored(text).map_or(0, Self::to_proto)
            }
        }

        impl $crate::stored::StoredEnum for $name {
            const ALL: &'static [Self] = $name::ALL;
            fn as_str(self) -> &'static str { $name::as_str(self) }
            fn from_stored(text: &str) -> Option<Self> { $name::from_stored(text) }
            fn from_proto(value: i32) -> Result<Self, &'static str> { $name::from_proto(value) }
            fn to_proto(self) -> i32 { $name::to_proto(self) }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
