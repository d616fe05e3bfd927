//! Intake forms: versioned questionnaires (FHIR Questionnaire) and a
//! patient's answers to one version (QuestionnaireResponse), checked against
//! it so that every problem is reported at once.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use medsec_platform::FieldViolations;
use medsec_platform::time::parse_civil_date;
use medsec_proto::records::v1 as pb;
use serde::{Deserialize, Serialize};

use medsec_platform::text;

const MAX_ITEMS: usize = 500;
const MAX_DEPTH: usize = 5;

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
    fn describe(self) -> &'static str {
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
    /// Validates a questionnaire; `prefix` is the path of its title and items
    /// ("template" or "" at the top of a request).
    pub fn parse(
        title: &str,
        items: &[pb::FormItem],
        prefix: &str,
    ) -> Result<Self, FieldViolations> {
        let path = |field: &str| {
            if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}.{field}")
            }
        };
        let mut violations = FieldViolations::default();
        let title = violations.check(path("title"), text::required_line(title, 200));
        if items.is_empty() {
            violations.add(path("items"), "must have at least one item");
        }
        let mut seen = HashSet::new();
        let mut count = 0;
        let items = parse_items(
            items,
            &path("items"),
            1,
            &mut seen,
            &mut count,
            &mut violations,
        );
        if count > MAX_ITEMS {
            violations.add(
                path("items"),
                format!("must have at most {MAX_ITEMS} items"),
            );
        }
        match (title, violations.is_empty()) {
            (Some(title), true) => Ok(Self { title, items }),
            _ => Err(violations),
        }
    }
}

fn parse_items(
    items: &[pb::FormItem],
    path: &str,
    depth: usize,
    seen: &mut HashSet<String>,
    count: &mut usize,
    violations: &mut FieldViolations,
) -> Vec<FormItem> {
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        *count += 1;
        let at = format!("{path}[{i}]");
        let link_id = item.link_id.trim();
        let link_ok = !link_id.is_empty()
            && link_id.len() <= 64
            && link_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !link_ok {
            violations.add(
                format!("{at}.link_id"),
                "must be 1 to 64 letters, digits, '.', '_' or '-'",
            );
        } else if !seen.insert(link_id.to_owned()) {
            violations.add(format!("{at}.link_id"), format!("repeats {link_id:?}"));
        }
        let text = violations.check(format!("{at}.text"), text::required_line(&item.text, 500));
        let item_type = violations.check(format!("{at}.type"), ItemType::from_proto(item.r#type));
        let options: Vec<String> = item.options.iter().map(|o| o.trim().to_owned()).collect();
        match item_type {
            Some(ItemType::Choice | ItemType::MultiChoice) => {
                let distinct: HashSet<&String> = options.iter().collect();
                if options.is_empty() || options.iter().any(String::is_empty) {
                    violations.add(
                        format!("{at}.options"),
                        "must list at least one non-empty option",
                    );
                } else if distinct.len() != options.len() {
                    violations.add(format!("{at}.options"), "must not repeat an option");
                }
            }
            Some(_) if !options.is_empty() => {
                violations.add(format!("{at}.options"), "only choice items have options");
            }
            _ => {}
        }
        let children = match item_type {
            Some(ItemType::Group) if item.items.is_empty() => {
                violations.add(format!("{at}.items"), "a group must have at least one item");
                Vec::new()
            }
            Some(ItemType::Group) if depth >= MAX_DEPTH => {
                violations.add(
                    format!("{at}.items"),
                    format!("groups nest at most {MAX_DEPTH} deep"),
                );
                Vec::new()
            }
            Some(ItemType::Group) => parse_items(
                &item.items,
                &format!("{at}.items"),
                depth + 1,
                seen,
                count,
                violations,
            ),
            Some(_) if !item.items.is_empty() => {
                violations.add(format!("{at}.items"), "only groups have nested items");
                Vec::new()
            }
            _ => Vec::new(),
        };
        if let (Some(text), Some(item_type)) = (text, item_type) {
            parsed.push(FormItem {
                link_id: link_id.to_owned(),
                text,
                item_type,
                required: item.required,
                options,
                items: children,
            });
        }
    }
    parsed
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

/// An answer as stored: the value in its item's type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerValue {
    pub link_id: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Text(String),
    Boolean(bool),
    Integer(i64),
    /// Kept as its canonical text so no precision is ever lost.
    Decimal(String),
    Date(NaiveDate),
    Choice(String),
    Choices(Vec<String>),
}

impl AnswerValue {
    pub fn to_proto(&self) -> pb::Answer {
        use pb::answer::Value as V;
        let value = match &self.value {
            Value::Text(text) => V::Text(text.clone()),
            Value::Boolean(b) => V::Boolean(*b),
            Value::Integer(n) => V::Integer(*n),
            Value::Decimal(d) => V::Decimal(d.clone()),
            Value::Date(d) => V::Date(medsec_platform::time::format_civil_date(*d)),
            Value::Choice(c) => V::Choice(c.clone()),
            Value::Choices(cs) => V::Choices(pb::Choices { values: cs.clone() }),
        };
        pb::Answer {
            link_id: self.link_id.clone(),
            value: Some(value),
        }
    }
}

/// Checks `answers` against the template's `items`. With `complete`, every
/// required item must be answered. `prefix` is the path of the answers in the
/// request ("response.answers" or "answers").
pub fn check_answers(
    items: &[FormItem],
    answers: &[pb::Answer],
    complete: bool,
    prefix: &str,
) -> Result<Vec<AnswerValue>, FieldViolations> {
    let mut by_link = HashMap::new();
    index_items(items, &mut by_link);
    let mut violations = FieldViolations::default();
    let mut answered = HashSet::new();
    let mut values = Vec::with_capacity(answers.len());
    for (i, answer) in answers.iter().enumerate() {
        let link_id = answer.link_id.trim();
        let Some(item) = by_link.get(link_id) else {
            violations.add(
                format!("{prefix}[{i}].link_id"),
                format!("{link_id:?} is not an item of this template version"),
            );
            continue;
        };
        if !answered.insert(link_id.to_owned()) {
            violations.add(format!("{prefix}.{link_id}"), "is answered more than once");
            continue;
        }
        match answer_value(item, answer.value.as_ref()) {
            Ok(value) => values.push(AnswerValue {
                link_id: link_id.to_owned(),
                value,
            }),
            Err(why) => violations.add(format!("{prefix}.{link_id}"), why),
        }
    }
    if complete {
        let mut missing = Vec::new();
        required_items(items, &mut missing);
        for item in missing {
            if !answered.contains(&item.link_id) {
                violations.add(
                    format!("{prefix}.{}", item.link_id),
                    format!("is required ({:?}) and not answered", item.text),
                );
            }
        }
    }
    if violations.is_empty() {
        Ok(values)
    } else {
        Err(violations)
    }
}

fn index_items<'a>(items: &'a [FormItem], into: &mut HashMap<&'a str, &'a FormItem>) {
    for item in items {
        into.insert(&item.link_id, item);
        index_items(&item.items, into);
    }
}

fn required_items<'a>(items: &'a [FormItem], into: &mut Vec<&'a FormItem>) {
    for item in items {
        if item.item_type == ItemType::Group {
            required_items(&item.items, into);
        } else if item.required {
            into.push(item);
        }
    }
}

fn answer_value(item: &FormItem, value: Option<&pb::answer::Value>) -> Result<Value, String> {
    use pb::answer::Value as V;
    let wrong = || {
        format!(
            "{:?} is {} question",
            item.link_id,
            item.item_type.describe()
        )
    };
    let Some(value) = value else {
        return Err("has no value".into());
    };
    match (item.item_type, value) {
        (ItemType::Group, _) => Err(format!("{:?} is a group: answer its items", item.link_id)),
        (ItemType::String, V::Text(text)) => {
            let text = text::required_line(text, 1000)?;
            Ok(Value::Text(text))
        }
        (ItemType::Text, V::Text(text)) => Ok(Value::Text(text::required(text, 10_000)?)),
        (ItemType::Boolean, V::Boolean(b)) => Ok(Value::Boolean(*b)),
        (ItemType::Integer, V::Integer(n)) => Ok(Value::Integer(*n)),
        (ItemType::Decimal, V::Decimal(text)) => parse_decimal(text)
            .map(Value::Decimal)
            .ok_or_else(|| format!("{text:?} is not a decimal number such as 72.5")),
        (ItemType::Date, V::Date(text)) => parse_civil_date(text)
            .map(Value::Date)
            .ok_or_else(|| format!("{text:?} is not a date in the form YYYY-MM-DD")),
        (ItemType::Choice, V::Choice(choice)) => {
            if item.options.iter().any(|o| o == choice) {
                Ok(Value::Choice(choice.clone()))
            } else {
                Err(format!("{choice:?} is not one of {:?}", item.options))
            }
        }
        (ItemType::MultiChoice, V::Choices(choices)) => {
            if choices.values.is_empty() {
                return Err("has no choices".into());
            }
            let unknown: Vec<&String> = choices
                .values
                .iter()
                .filter(|c| !item.options.contains(c))
                .collect();
            if !unknown.is_empty() {
                return Err(format!("{unknown:?} not among {:?}", item.options));
            }
            let distinct: HashSet<&String> = choices.values.iter().collect();
            if distinct.len() != choices.values.len() {
                return Err("repeats a choice".into());
            }
            Ok(Value::Choices(choices.values.clone()))
        }
        _ => Err(wrong()),
    }
}

/// A decimal's canonical text: optional '-', digits, optional '.' and
/// digits; at most 30 digits. "+1.50" -> "1.50".
fn parse_decimal(text: &str) -> Option<String> {
    let text = text.trim();
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    let (sign, digits) = match unsigned.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", unsigned),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) || digits.len() > 31 {
        return None;
    }
    Some(format!("{sign}{digits}"))
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

    fn template() -> TemplateContent {
        let mut smoking = item("smoking", pb::ItemType::Choice, true);
        smoking.options = vec!["never".into(), "former".into(), "current".into()];
        let mut history = item("history", pb::ItemType::Group, false);
        history.items = vec![
            item("weight", pb::ItemType::Decimal, true),
            item("last_visit", pb::ItemType::Date, false),
        ];
        TemplateContent::parse(
            "Intake",
            &[item("name", pb::ItemType::String, true), smoking, history],
            "template",
        )
        .unwrap()
    }

    fn answer(link_id: &str, value: pb::answer::Value) -> pb::Answer {
        pb::Answer {
            link_id: link_id.into(),
            value: Some(value),
        }
    }

    #[test]
    fn bad_templates_name_every_problem() {
        let mut choice = item("c", pb::ItemType::Choice, false);
        choice.options = vec![];
        let group = item("g", pb::ItemType::Group, false);
        let mut with_options = item("s", pb::ItemType::String, false);
        with_options.options = vec!["x".into()];
        let violations = TemplateContent::parse(
            "",
            &[
                item("a", pb::ItemType::String, false),
                item("a", pb::ItemType::Integer, false),
                item("bad id!", pb::ItemType::Unspecified, false),
                choice,
                group,
                with_options,
            ],
            "template",
        )
        .unwrap_err();
        let fields: Vec<_> = violations.fields().collect();
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
    fn a_complete_response_reports_all_problems_together() {
        use pb::answer::Value as V;
        let template = template();
        let violations = check_answers(
            &template.items,
            &[
                answer("smoking", V::Choice("sometimes".into())),
                answer("weight", V::Text("heavy".into())),
                answer("nonsense", V::Boolean(true)),
            ],
            true,
            "response.answers",
        )
        .unwrap_err();
        let fields: Vec<_> = violations.fields().collect();
        assert_eq!(
            fields,
            [
                "response.answers.smoking",
                "response.answers.weight",
                "response.answers[2].link_id",
                "response.answers.name",
            ]
        );
    }

    #[test]
    fn in_progress_responses_may_be_partial_but_not_wrong() {
        use pb::answer::Value as V;
        let template = template();
        let values = check_answers(
            &template.items,
            &[answer("weight", V::Decimal("+72.50".into()))],
            false,
            "answers",
        )
        .unwrap();
        assert_eq!(values[0].value, Value::Decimal("72.50".into()));
        assert!(
            check_answers(
                &template.items,
                &[answer("weight", V::Decimal("7e2".into()))],
                false,
                "answers"
            )
            .is_err()
        );
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("-0.125").as_deref(), Some("-0.125"));
        assert_eq!(parse_decimal("12").as_deref(), Some("12"));
        for bad in ["", ".5", "5.", "1.2.3", "NaN", "1e3", "--1"] {
            assert!(parse_decimal(bad).is_none(), "{bad}");
        }
    }
}
