//! A patient's answers to one template version (FHIR
//! QuestionnaireResponse), checked against it so that every problem is
//! reported at once.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use medsec_platform::FieldViolations;
use medsec_platform::request::message;
use medsec_platform::text;
use medsec_platform::time::parse_civil_date;
use medsec_proto::records::v1 as pb;
use serde::{Deserialize, Serialize};

use super::{FormItem, FormStatus, ItemType, MAX_ITEMS, MAX_LINK_ID_CHARS, MAX_OPTIONS};

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
    // Counted before any answer is read: each item is answered at most once.
    if answers.len() > MAX_ITEMS {
        violations.add(prefix, format!("must have at most {MAX_ITEMS} items"));
        return Err(violations);
    }
    let mut answered = HashSet::new();
    let mut values = Vec::with_capacity(answers.len());
    for (i, answer) in answers.iter().enumerate() {
        let link_id = answer.link_id.trim();
        if link_id.chars().count() > MAX_LINK_ID_CHARS {
            violations.add(
                format!("{prefix}[{i}].link_id"),
                format!("must be at most {MAX_LINK_ID_CHARS} characters"),
            );
            continue;
        }
        let Some(item) = by_link.get(link_id) else {
            violations.add(
                format!("{prefix}[{i}].link_id"),
                format!(
                    "{} is not an item of this template version",
                    text::quoted(link_id)
                ),
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
            .ok_or_else(|| "is not a decimal number such as 72.5".to_owned()),
        (ItemType::Date, V::Date(text)) => parse_civil_date(text)
            .map(Value::Date)
            .ok_or_else(|| message::NOT_A_DATE.to_owned()),
        (ItemType::Choice, V::Choice(choice)) => {
            if item.options.iter().any(|o| o == choice) {
                Ok(Value::Choice(choice.clone()))
            } else {
                // The answer is the patient's: name the options, not it.
                Err(format!("is not one of {:?}", item.options))
            }
        }
        (ItemType::MultiChoice, V::Choices(choices)) => {
            if choices.values.is_empty() {
                return Err("has no choices".into());
            }
            if choices.values.len() > MAX_OPTIONS {
                return Err(format!("must have at most {MAX_OPTIONS} items"));
            }
            let unknown = choices
                .values
                .iter()
                .filter(|c| !item.options.contains(c))
                .count();
            if unknown > 0 {
                return Err(format!(
                    "has {unknown} choices not among {:?}",
                    item.options
                ));
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
    if text.len() > 32 {
        return None;
    }
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

/// The next revision of a response now `status`, to the template version's
/// `items`: its status and its answers, checked (see [`check_answers`]).
pub fn next_revision(
    status: FormStatus,
    items: &[FormItem],
    answers: &[pb::Answer],
    complete: bool,
) -> Result<(FormStatus, Vec<AnswerValue>), FieldViolations> {
    let status = status.revised(complete);
    let answers = check_answers(items, answers, status.is_complete(), "answers")?;
    Ok((status, answers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_answer_is_never_echoed_back() {
        use pb::answer::Value as V;
        let secret = "HIV positive since 2019";
        let mut choice = item("q", ItemType::Choice, true);
        choice.options = vec!["yes".into(), "no".into()];
        let mut multi = item("m", ItemType::MultiChoice, true);
        multi.options = vec!["a".into()];
        for (item, value) in [
            (
                item("d", ItemType::Decimal, true),
                V::Decimal(secret.into()),
            ),
            (item("t", ItemType::Date, true), V::Date(secret.into())),
            (choice, V::Choice(secret.into())),
            (
                multi,
                V::Choices(pb::Choices {
                    values: vec![secret.into()],
                }),
            ),
        ] {
            let why = answer_value(&item, Some(&value)).unwrap_err();
            assert!(!why.contains(secret), "{why}");
        }
    }

    fn item(link_id: &str, item_type: ItemType, required: bool) -> FormItem {
        FormItem {
            link_id: link_id.into(),
            text: format!("question {link_id}"),
            item_type,
            required,
            options: Vec::new(),
            items: Vec::new(),
        }
    }

    /// A name, a smoking choice, and a group holding weight and last visit.
    fn items() -> Vec<FormItem> {
        let mut smoking = item("smoking", ItemType::Choice, true);
        smoking.options = vec!["never".into(), "former".into(), "current".into()];
        let mut history = item("history", ItemType::Group, false);
        history.items = vec![
            item("weight", ItemType::Decimal, true),
            item("last_visit", ItemType::Date, false),
        ];
        vec![item("name", ItemType::String, true), smoking, history]
    }

    fn answer(link_id: &str, value: pb::answer::Value) -> pb::Answer {
        pb::Answer {
            link_id: link_id.into(),
            value: Some(value),
        }
    }

    #[test]
    fn a_complete_response_reports_all_problems_together() {
        use pb::answer::Value as V;
        let items = items();
        let violations = check_answers(
            &items,
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
        let items = items();
        let values = check_answers(
            &items,
            &[answer("weight", V::Decimal("+72.50".into()))],
            false,
            "answers",
        )
        .unwrap();
        assert_eq!(values[0].value, Value::Decimal("72.50".into()));
        assert!(
            check_answers(
                &items,
                &[answer("weight", V::Decimal("7e2".into()))],
                false,
                "answers"
            )
            .is_err()
        );
    }

    #[test]
    fn too_many_answers_and_overlong_link_ids_are_refused_unread() {
        use pb::answer::Value as V;
        let many = vec![answer("name", V::Text("Ada".into())); MAX_ITEMS + 1];
        let error = check_answers(&items(), &many, false, "answers").unwrap_err();
        assert_eq!(
            error.iter().collect::<Vec<_>>(),
            [("answers", "must have at most 500 items")]
        );
        let long = "x".repeat(MAX_LINK_ID_CHARS + 1);
        let error = check_answers(
            &items(),
            &[answer(&long, V::Boolean(true))],
            false,
            "answers",
        )
        .unwrap_err();
        assert_eq!(
            error.iter().collect::<Vec<_>>(),
            [("answers[0].link_id", "must be at most 64 characters")]
        );
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("-0.125").as_deref(), Some("-0.125"));
        assert_eq!(parse_decimal("12").as_deref(), Some("12"));
        let long = format!("1.{}", "0".repeat(31));
        for bad in ["", ".5", "5.", "1.2.3", "NaN", "1e3", "--1", &long] {
            assert!(parse_decimal(bad).is_none(), "{bad}");
        }
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = pb::answer::Value> {
        use pb::answer::Value as V;
        use proptest::prelude::*;
        let texts = prop_oneof![
            ".{0,30}",
            "[0-9+.-]{0,8}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            proptest::sample::select(vec!["never", "former", "current", "72.5", "2026-02-30"])
                .prop_map(str::to_owned),
        ];
        prop_oneof![
            texts.clone().prop_map(V::Text),
            any::<bool>().prop_map(V::Boolean),
            any::<i64>().prop_map(V::Integer),
            texts.clone().prop_map(V::Decimal),
            texts.clone().prop_map(V::Date),
            texts.clone().prop_map(V::Choice),
            proptest::collection::vec(texts, 0..4)
                .prop_map(|values| V::Choices(pb::Choices { values })),
        ]
    }

    proptest::proptest! {
        /// Any answers at all to the sample form: a clear answer, never a
        /// panic; what is accepted reads back to itself.
        #[test]
        fn any_answers_are_checked_and_accepted_ones_round_trip(
            answers in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "name", "smoking", "history", "weight", "last_visit", " weight ", "other", "",
                    ]),
                    proptest::option::of(any_value()),
                ),
                0..6,
            ),
            complete: bool,
        ) {
            let answers: Vec<pb::Answer> = answers
                .into_iter()
                .map(|(link_id, value)| pb::Answer { link_id: link_id.into(), value })
                .collect();
            let items = items();
            if let Ok(values) = check_answers(&items, &answers, complete, "answers") {
                let again: Vec<pb::Answer> = values.iter().map(AnswerValue::to_proto).collect();
                let reread = check_answers(&items, &again, complete, "answers");
                proptest::prop_assert_eq!(reread, Ok(values));
            }
        }
    }
}
