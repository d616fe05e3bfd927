//! Intake forms: versioned questionnaires (FHIR Questionnaire), read so
//! that every problem is reported at once, and where a response to one
//! stands; the answers themselves are checked in `answers`.

mod answers;

use std::collections::HashSet;

use medsec_platform::Reader;
use medsec_platform::text::quoted;
use medsec_proto::records::v1 as pb;
use serde::{Deserialize, Serialize};

pub use answers::{AnswerValue, Value, check_answers, next_revision};

/// Most items a template holds, nested ones included; so also the most
/// answers a response can give.
pub const MAX_ITEMS: usize = 500;
const MAX_DEPTH: usize = 5;
/// Longest link id.
pub const MAX_LINK_ID_CHARS: usize = 64;
/// Most options a choice item offers.
pub const MAX_OPTIONS: usize = 100;
/// Longest option.
const MAX_OPTION_CHARS: usize = 200;

medsec_platform::stored_enum!(
    /// What kind of answer an item takes (a group holds items instead).
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    ItemType, pb::ItemType, {
        String => "string", String,
        Text => "text", Text,
        Boolean => "boolean", Boolean,
        Integer => "integer", Integer,
        Decimal => "decimal", Decimal,
        Date => "date", Date,
        Choice => "choice", Choice,
        MultiChoice => "multi_choice", MultiChoice,
        Group => "group", Group,
    }
);

medsec_platform::stored_enum!(
    /// Where a response stands: saved part-way, completed, or changed after
    /// completion.
    FormStatus, pb::FormResponseStatus, {
        InProgress => "in_progress", InProgress,
        Completed => "completed", Completed,
        Amended => "amended", Amended,
    }
);

impl ItemType {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::String => "a one-line text",
            Self::Text => "a text",
            Self::Boolean => "a yes/no",
            Self::Integer => "an integer",
            Self::Decimal => "a decimal",
            Self::Date => "a date",
            Self::Choice => "a single-choice",
            Self::MultiChoice => "a multiple-choice",
            Self::Group => "a group",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormItem {
    pub link_id: String,
    pub text: String,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<FormItem>,
}

/// The validated content of a template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateContent {
    pub title: String,
    pub items: Vec<FormItem>,
}

impl TemplateContent {
    /// Reads a questionnaire; `prefix` is the path of its title and items
    /// ("template", or "" at the top of a request).
    pub fn read(r: &mut Reader, title: &str, items: &[pb::FormItem], prefix: &str) -> Option<Self> {
        let path = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}.{field}")
            }
        };
        let title = r.required_line(&path("title"), title, 200);
        let mut counted = Some(());
        if items.is_empty() {
            r.add(path("items"), "must have at least one item");
            counted = None;
        }
        let mut walk = Walk {
            seen: HashSet::new(),
            count: 0,
            too_many: false,
        };
        let items = walk.items(r, items, &path("items"), 1);
        if walk.too_many {
            r.add(
                path("items"),
                format!("must have at most {MAX_ITEMS} items"),
            );
            counted = None;
        }
        counted?;
        Some(Self {
            title: title?,
            items: items?,
        })
    }
}

/// A walk through a questionnaire's items, nested groups included: every
/// link id once, and how many items in all.
struct Walk {
    seen: HashSet<String>,
    count: usize,
    /// The template holds more than `MAX_ITEMS`: the walk stopped unread.
    too_many: bool,
}

impl Walk {
    fn items(
        &mut self,
        r: &mut Reader,
        items: &[pb::FormItem],
        path: &str,
        depth: usize,
    ) -> Option<Vec<FormItem>> {
        // Counted before the items are read, so a template of a million
        // items costs no more than one of 501.
        if self.too_many || self.count + items.len() > MAX_ITEMS {
            self.too_many = true;
            return None;
        }
        let read: Vec<Option<FormItem>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.item(r, item, &format!("{path}[{i}]"), depth))
            .collect();
        read.into_iter().collect()
    }

    fn item(
        &mut self,
        r: &mut Reader,
        item: &pb::FormItem,
        at: &str,
        depth: usize,
    ) -> Option<FormItem> {
        self.count += 1;
        let link_id = item.link_id.trim();
        let link_ok = !link_id.is_empty()
            && link_id.len() <= MAX_LINK_ID_CHARS
            && link_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        let link = if !link_ok {
            r.add(
                format!("{at}.link_id"),
                "must be 1 to 64 letters, digits, '.', '_' or '-'",
            );
            None
        } else if !self.seen.insert(link_id.to_owned()) {
            r.add(
                format!("{at}.link_id"),
                format!("repeats {}", quoted(link_id)),
            );
            None
        } else {
            Some(link_id.to_owned())
        };
        let text = r.required_line(&format!("{at}.text"), &item.text, 500);
        let item_type = r.enumerated::<ItemType>(&format!("{at}.type"), item.r#type);
        let options_field = format!("{at}.options");
        let options_bounded = if item.options.len() > MAX_OPTIONS {
            r.add(
                &options_field,
                format!("must have at most {MAX_OPTIONS} items"),
            );
            false
        } else {
            let mut bounded = true;
            for (j, option) in item.options.iter().enumerate() {
                if option.trim().chars().count() > MAX_OPTION_CHARS {
                    r.add(
                        format!("{options_field}[{j}]"),
                        format!("must be at most {MAX_OPTION_CHARS} characters"),
                    );
                    bounded = false;
                }
            }
            bounded
        };
        let options: Vec<String> = if options_bounded {
            item.options.iter().map(|o| o.trim().to_owned()).collect()
        } else {
            Vec::new()
        };
        let options_ok = match item_type {
            _ if !options_bounded => None,
            Some(ItemType::Choice | ItemType::MultiChoice) => {
                let distinct: HashSet<&String> = options.iter().collect();
                if options.is_empty() || options.iter().any(String::is_empty) {
                    r.add(
                        format!("{at}.options"),
                        "must list at least one non-empty option",
                    );
                    None
                } else if distinct.len() != options.len() {
                    r.add(format!("{at}.options"), "must not repeat an option");
                    None
                } else {
                    Some(())
                }
            }
            Some(_) if !options.is_empty() => {
                r.add(format!("{at}.options"), "only choice items have options");
                None
            }
            _ => Some(()),
        };
        let children = match item_type {
            Some(ItemType::Group) if item.items.is_empty() => {
                r.add(format!("{at}.items"), "a group must have at least one item");
                None
            }
            Some(ItemType::Group) if depth >= MAX_DEPTH => {
                r.add(
                    format!("{at}.items"),
                    format!("groups nest at most {MAX_DEPTH} deep"),
                );
                None
            }
            Some(ItemType::Group) => self.items(r, &item.items, &format!("{at}.items"), depth + 1),
            Some(_) if !item.items.is_empty() => {
                r.add(format!("{at}.items"), "only groups have nested items");
                None
            }
            _ => Some(Vec::new()),
        };
        options_ok?;
        Some(FormItem {
            link_id: link?,
            text: text?,
            item_type: item_type?,
            required: item.required,
            options,
            items: children?,
        })
    }
}

impl FormStatus {
    /// The status a response is submitted in: in progress or completed
    /// (amended is reached only by revising).
    pub fn submitted(value: i32) -> Result<Self, &'static str> {
        match Self::from_proto(value) {
            Ok(status) if status != Self::Amended => Ok(status),
            _ => Err("must be FORM_RESPONSE_STATUS_IN_PROGRESS or FORM_RESPONSE_STATUS_COMPLETED"),
        }
    }

    /// The status after a revision that asks to `complete` (or not): once
    /// completed, every revision is an amendment and stays complete.
    pub fn revised(self, complete: bool) -> Self {
        match (self, complete) {
            (Self::InProgress, true) => Self::Completed,
            (Self::InProgress, false) => Self::InProgress,
            (Self::Completed | Self::Amended, _) => Self::Amended,
        }
    }

    /// Whether every required item must be answered.
    pub fn is_complete(self) -> bool {
        self != Self::InProgress
    }
}

pub fn items_to_proto(items: &[FormItem]) -> Vec<pb::FormItem> {
    items
        .iter()
        .map(|item| pb::FormItem {
            link_id: item.link_id.clone(),
            text: item.text.clone(),
            r#type: item.item_type.to_proto(),
            required: item.required,
            options: item.options.clone(),
            items: items_to_proto(&item.items),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(link_id: &str, item_type: pb::ItemType, required: bool) -> pb::FormItem {
        pb::FormItem {
            link_id: link_id.into(),
            text: format!("question {link_id}"),
            r#type: item_type as i32,
            required,
            ..Default::default()
        }
    }

    /// The template read, or the fields found bad.
    fn read_template(title: &str, items: &[pb::FormItem]) -> Result<TemplateContent, Vec<String>> {
        let mut r = Reader::new();
        let content = TemplateContent::read(&mut r, title, items, "template");
        r.finish(content).map_err(|error| match error {
            medsec_platform::ApiError::InvalidArgument(violations) => {
                violations.fields().map(str::to_owned).collect()
            }
            other => panic!("not invalid: {other:?}"),
        })
    }

    #[test]
    fn bad_templates_name_every_problem() {
        let mut choice = item("c", pb::ItemType::Choice, false);
        choice.options = vec![];
        let group = item("g", pb::ItemType::Group, false);
        let mut with_options = item("s", pb::ItemType::String, false);
        with_options.options = vec!["x".into()];
        let fields = read_template(
            "",
            &[
                item("a", pb::ItemType::String, false),
                item("a", pb::ItemType::Integer, false),
                item("bad id!", pb::ItemType::Unspecified, false),
                choice,
                group,
                with_options,
            ],
        )
        .unwrap_err();
        assert_eq!(
            fields,
            [
                "template.title",
                "template.items[1].link_id",
                "template.items[2].link_id",
                "template.items[2].type",
                "template.items[3].options",
                "template.items[4].items",
                "template.items[5].options",
            ]
        );
    }

    #[test]
    fn a_template_of_too_many_items_or_options_is_refused_unread() {
        let many = vec![item("a", pb::ItemType::String, false); MAX_ITEMS + 1];
        assert_eq!(read_template("t", &many).unwrap_err(), ["template.items"]);
        // Nested items count too.
        let mut group = item("g", pb::ItemType::Group, false);
        group.items = vec![item("a", pb::ItemType::String, false); MAX_ITEMS];
        assert_eq!(
            read_template("t", &[group]).unwrap_err(),
            ["template.items"]
        );
        let mut choice = item("c", pb::ItemType::Choice, false);
        choice.options = vec!["x".into(); MAX_OPTIONS + 1];
        assert_eq!(
            read_template("t", &[choice.clone()]).unwrap_err(),
            ["template.items[0].options"]
        );
        choice.options = vec!["yes".into(), "n".repeat(MAX_OPTION_CHARS + 1)];
        assert_eq!(
            read_template("t", &[choice]).unwrap_err(),
            ["template.items[0].options[1]"]
        );
    }

    #[test]
    fn a_revision_once_complete_is_an_amendment() {
        use FormStatus::*;
        assert_eq!(InProgress.revised(false), InProgress);
        assert_eq!(InProgress.revised(true), Completed);
        assert_eq!(Completed.revised(false), Amended);
        assert_eq!(Amended.revised(true), Amended);
        assert!(FormStatus::submitted(Amended.to_proto()).is_err());
        assert_eq!(FormStatus::submitted(Completed.to_proto()), Ok(Completed));
    }
}
