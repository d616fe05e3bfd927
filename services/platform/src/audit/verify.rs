//! Checking the trail (`medsec audit verify`): every chain is walked from
//! its first event, each event's hash recomputed from its fields and its
//! link to the one before checked, its seq checked to follow without a gap,
//! and the chain's head checked to name its last event. Events and heads
//! are read in pages, in chain order, and merged, so memory stays flat
//! however long the trail.

use std::collections::VecDeque;
use std::fmt;

use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DbErr, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use uuid::Uuid;

use super::chain::GENESIS;
use super::entities::{event, head};

/// Rows read per query.
const PAGE: u64 = 2000;
/// Breaks kept in the report (every break is counted).
const MAX_BREAKS_KEPT: usize = 100;

/// What verifying the trail found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub chains: u64,
    pub events: u64,
    /// The first breaks, in chain order (at most 100).
    pub breaks: Vec<Break>,
    /// Every break found.
    pub break_count: u64,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.break_count == 0
    }
}

/// One place where a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The seq of the event at fault (for a head, the head's).
    pub seq: i64,
    /// The event at fault, when one is.
    pub event_id: Option<Uuid>,
    pub kind: BreakKind,
}

/// How a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The event's fields no longer hash to the hash it was written with:
    /// a field was changed after it was written.
    Altered { recorded: String, computed: String },
    /// The event does not link to the one before it: the one before was
    /// rewritten (hash and all), or this one was moved or forged.
    Unlinked { expected: String, found: String },
    /// Events are missing before this one: seqs `expected..seq`.
    Missing { expected: i64 },
    /// The head names another last event than the chain has.
    HeadDisagrees {
        head_seq: i64,
        head_hash: String,
        last_seq: i64,
        last_hash: String,
    },
    /// The chain has events but no head.
    NoHead,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = match self.event_id {
            Some(id) => format!("chain {} seq {} (event {id})", self.chain, self.seq),
            None => format!("chain {}", self.chain),
        };
        match &self.kind {
            BreakKind::Altered { recorded, computed } => write!(
                f,
                "{at}: changed after it was written: its fields hash to {computed}, \
                 it was written with {recorded}"
            ),
            BreakKind::Unlinked { expected, found } => write!(
                f,
                "{at}: does not follow the event before it: its previous hash is {found}, \
                 the event before hashes to {expected} (that event was rewritten, or this \
                 one moved)"
            ),
            BreakKind::Missing { expected } => write!(
                f,
                "{at}: events missing before it: seq {expected} to {} are gone",
                self.seq - 1
            ),
            BreakKind::HeadDisagrees {
                head_seq,
                head_hash,
                last_seq,
                last_hash,
            } => write!(
                f,
                "{at}: the head says the chain ends at seq {head_seq} ({head_hash}), \
                 its last event is seq {last_seq} ({last_hash})"
            ),
            BreakKind::NoHead => write!(f, "{at}: has events but no head"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.intact() {
            return write!(
                f,
                "audit trail intact: {} events in {} chains",
                self.events, self.chains
            );
        }
        writeln!(
            f,
            "audit trail broken: {} breaks in {} events of {} chains; the first:",
            self.break_count, self.events, self.chains
        )?;
        for found in &self.breaks {
            writeln!(f, "  {found}")?;
        }
        Ok(())
    }
}

/// Walks every chain of the trail in `db`.
pub async fn verify(db: &impl ConnectionTrait) -> Result<Report, DbErr> {
    let mut report = Report::default();
    let mut events = Events::default();
    let mut heads = Heads::default();
    let mut next_event = events.next(db).await?;
    let mut next_head = heads.next(db).await?;
    loop {
        let chain = match (&next_event, &next_head) {
            (None, None) => break,
            (Some(event), None) => event.chain.clone(),
            (None, Some(head)) => head.chain.clone(),
            (Some(event), Some(head)) => event.chain.clone().min(head.chain.clone()),
        };
        report.chains += 1;
        let mut walk = Walk::new(&chain);
        while let Some(event) = next_event.take_if(|event| event.chain == chain) {
            report.events += 1;
            if let Some(found) = walk.step(&event) {
                report.add(found);
            }
            next_event = events.next(db).await?;
        }
        match next_head.take_if(|head| head.chain == chain) {
            Some(head) => {
                if let Some(found) = walk.finish(&head) {
                    report.add(found);
                }
                next_head = heads.next(db).await?;
            }
            None => report.add(Break {
                chain: chain.clone(),
                seq: walk.last_seq,
                event_id: None,
                kind: BreakKind::NoHead,
            }),
        }
    }
    Ok(report)
}

impl Report {
    fn add(&mut self, found: Break) {
        self.break_count += 1;
        if self.breaks.len() < MAX_BREAKS_KEPT {
            self.breaks.push(found);
        }
    }
}

/// One chain being walked.
struct Walk {
    chain: String,
    last_seq: i64,
    last_hash: String,
}

impl Walk {
    fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
        }
    }

    /// Checks the next event of the chain: its place, its link, its hash.
    fn step(&mut self, event: &event::Model) -> Option<Break> {
        let at = |kind| Break {
            chain: self.chain.clone(),
            seq: event.seq,
            event_id: Some(event.id),
            kind,
        };
        let expected = self.last_seq + 1;
        let computed = event.fields().hash();
        let found = if event.seq != expected {
            Some(at(BreakKind::Missing { expected }))
        } else if event.prev_hash != self.last_hash {
            Some(at(BreakKind::Unlinked {
                expected: self.last_hash.clone(),
                found: event.prev_hash.clone(),
            }))
        } else if computed != event.hash {
            Some(at(BreakKind::Altered {
                recorded: event.hash.clone(),
                computed,
            }))
        } else {
            None
        };
        // Go on from the event as it stands, so one change is one break.
        self.last_seq = event.seq;
        self.last_hash = event.hash.clone();
        found
    }

    /// Checks the head names the last event walked.
    fn finish(&self, head: &head::Model) -> Option<Break> {
        (head.seq != self.last_seq || head.hash != self.last_hash).then(|| Break {
            chain: self.chain.clone(),
            seq: head.seq,
            event_id: None,
            kind: BreakKind::HeadDisagrees {
                head_seq: head.seq,
                head_hash: head.hash.clone(),
                last_seq: self.last_seq,
                last_hash: self.last_hash.clone(),
            },
        })
    }
}

/// Every event in (chain, seq) order, a page at a time.
#[derive(Default)]
struct Events {
    page: VecDeque<event::Model>,
    after: Option<(String, i64)>,
    done: bool,
}

impl Events {
    async fn next(&mut self, db: &impl ConnectionTrait) -> Result<Option<event::Model>, DbErr> {
        if self.page.is_empty() && !self.done {
            use event::Column;
            let mut query = event::Entity::find();
            if let Some((chain, seq)) = &self.after {
                query = query.filter(
                    Condition::any().add(Column::Chain.gt(chain.as_str())).add(
                        Condition::all()
                            .add(Column::Chain.eq(chain.as_str()))
                            .add(Column::Seq.gt(*seq)),
                    ),
                );
            }
            let rows = query
                .order_by_asc(Column::Chain)
                .order_by_asc(Column::Seq)
                .limit(PAGE)
                .all(db)
                .await?;
            self.done = (rows.len() as u64) < PAGE;
            if let Some(last) = rows.last() {
                self.after = Some((last.chain.clone(), last.seq));
            }
            self.page.extend(rows);
        }
        Ok(self.page.pop_front())
    }
}

/// Every head in chain order, a page at a time.
#[derive(Default)]
struct Heads {
    page: VecDeque<head::Model>,
    after: Option<String>,
    done: bool,
}

impl Heads {
    async fn next(&mut self, db: &impl ConnectionTrait) -> Result<Option<head::Model>, DbErr> {
        if self.page.is_empty() && !self.done {
            use head::Column;
            let mut query = head::Entity::find();
            if let Some(chain) = &self.after {
                query = query.filter(Column::Chain.gt(chain.as_str()));
            }
            let rows = query
                .order_by_asc(Column::Chain)
                .limit(PAGE)
                .all(db)
                .await?;
            self.done = (rows.len() as u64) < PAGE;
            if let Some(last) = rows.last() {
                self.after = Some(last.chain.clone());
            }
            self.page.extend(rows);
        }
        Ok(self.page.pop_front())
    }
}
