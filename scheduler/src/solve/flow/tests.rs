//! Unit tests of the min-cost flow: hand-made networks, enumeration and
//! complementary slackness.

use super::*;
use crate::model::Priority;
use crate::solve::certificate::{certify_arcs, flow_value, reduced_cost};
use crate::solve::network;
use crate::solve::testkit::{
    self, Rng, brute_force_flow, loads, network, referral, slot, to_bin, to_date,
};

/// A network of one or two dates with one or two bins each, and up to three
/// classes of one or two referrals, each with up to three arcs (date hubs
/// and direct arcs), some dearer than staying unallocated.
fn random_network(rng: &mut Rng) -> (Subproblem, Vec<Vec<Arc>>) {
    let dates = rng.between(1, 2) as u32;
    let mut bins = Vec::new();
    for date in 0..dates {
        for _ in 0..rng.between(1, 2) {
            bins.push((date, rng.between(1, 2)));
        }
    }
    let sizes: Vec<usize> = (0..rng.between(1, 3))
        .map(|_| rng.between(1, 2) as usize)
        .collect();
    let sub = network(dates as usize, &bins, &sizes);
    let offered = sizes
        .iter()
        .map(|_| {
            let mut arcs = Vec::new();
            for date in 0..dates {
                if rng.below(3) > 0 {
                    arcs.push(to_date(date, rng.between(-60, 10)));
                }
                if rng.below(3) == 0 {
                    let of_date = &sub.date_bins[date as usize];
                    let bin = of_date[rng.below(of_date.len() as u64) as usize];
                    arcs.push(to_bin(&sub, bin, rng.between(-60, 10)));
                }
            }
            arcs.truncate(3);
            arcs.sort_by_key(|a| (a.date, a.hub));
            arcs
        })
        .collect();
    (sub, offered)
}

/// The flow's duals with its flow satisfy complementary slackness: both are
/// feasible, every arc with flow has reduced cost 0, and every row with a
/// non-zero dual is tight. With the certificate's bound equal to the flow's
/// value, that proves the flow optimal.
fn assert_slackness(sub: &Subproblem, offered: &[Vec<Arc>], outcome: &FlowOutcome) {
    let duals = &outcome.duals;
    assert!(duals.date.iter().chain(&duals.bin).all(|&d| d <= 0));
    let (bound, class_dual) = certify_arcs(sub, offered, duals);
    assert_eq!(bound, flow_value(&outcome.flows), "strong duality");
    let load = loads(sub, &outcome.flows);
    for (c, arcs) in offered.iter().enumerate() {
        for arc in arcs {
            let rc = reduced_cost(arc, class_dual[c], duals);
            assert!(rc >= 0, "dual infeasible on {arc:?}");
            let units: i64 = outcome.flows[c]
                .iter()
                .filter(|(a, _)| a == arc)
                .map(|(_, u)| u)
                .sum();
            assert!(
                units == 0 || rc == 0,
                "flow on {arc:?} with reduced cost {rc}"
            );
        }
        let size = sub.classes[c].members.len() as i64;
        assert!(load.class[c] <= size);
        assert!(class_dual[c] == 0 || load.class[c] == size);
    }
    for (d, &alpha) in duals.date.iter().enumerate() {
        assert!(load.date[d] <= sub.date_capacity[d]);
        assert!(alpha == 0 || load.date[d] == sub.date_capacity[d]);
    }
    for (b, &beta) in duals.bin.iter().enumerate() {
        assert!(load.bin[b] <= sub.bins[b].capacity);
        assert!(beta == 0 || load.bin[b] == sub.bins[b].capacity);
    }
}

#[test]
fn the_busier_class_takes_both_places_on_the_first_date_and_the_other_waits() {
    // Date 0 has two places (bins 0 and 1), date 1 one (bin 2). Class A (two
    // referrals) gains 50 on date 0 and 20 on date 1; class B (one) gains 25
    // and 30. A on date 0 twice and B on date 1 gives -130; the next best,
    // A on dates 0 and 1 and B on date 0, gives -95.
    let sub = network(2, &[(0, 1), (0, 1), (1, 1)], &[2, 1]);
    let offered = vec![
        vec![to_date(0, -50), to_date(1, -20)],
        vec![to_date(0, -25), to_date(1, -30)],
    ];
    let outcome = min_cost_flow(&sub, &offered, None);
    assert_eq!(
        outcome.flows,
        vec![vec![(to_date(0, -50), 2)], vec![(to_date(1, -30), 1)]]
    );
    assert_eq!(flow_value(&outcome.flows), -130);
    assert_eq!(brute_force_flow(&sub, &offered), -130);
    assert_slackness(&sub, &offered, &outcome);
}

#[test]
fn a_bin_row_caps_direct_arcs_and_the_date_hub_fills_the_rest() {
    // One date with bin 0 (one place) and bin 1 (two places). Class P (two
    // referrals) may only go straight to bin 0 and gains 30; class Q (two)
    // gains 10 anywhere on the date. P gets the one place of bin 0 and Q two
    // of the rest: -50. Without the bin row P would take two: -70.
    let sub = network(1, &[(0, 1), (0, 2)], &[2, 2]);
    let offered = vec![vec![to_bin(&sub, 0, -30)], vec![to_date(0, -10)]];
    let outcome = min_cost_flow(&sub, &offered, None);
    assert_eq!(
        outcome.flows,
        vec![vec![(to_bin(&sub, 0, -30), 1)], vec![(to_date(0, -10), 2)]]
    );
    assert_eq!(flow_value(&outcome.flows), -50);
    assert_eq!(brute_force_flow(&sub, &offered), -50);
    assert_slackness(&sub, &offered, &outcome);
    // P has a referral left over, so its class dual is 0, and its used arc
    // has reduced cost 0: the date and bin duals together price in all of
    // P's gain (how they share it is not unique).
    assert_eq!(outcome.duals.date[0] + outcome.duals.bin[0], -30);
}

#[test]
fn nothing_is_allocated_without_a_place_an_arc_or_a_gain() {
    // Date 0 is closed (capacity 0); class 0 may only go there, class 1 has
    // no arc at all (every date barred), class 2's arc is dearer than
    // staying unallocated. Everyone stays unallocated, and the certificate
    // still proves it: the closed date's dual prices its arc out.
    let mut sub = network(2, &[(0, 1), (1, 1)], &[3, 1, 1]);
    sub.date_capacity[0] = 0;
    let offered = vec![vec![to_date(0, -100)], Vec::new(), vec![to_date(1, 5)]];
    let outcome = min_cost_flow(&sub, &offered, None);
    assert!(outcome.flows.iter().all(Vec::is_empty));
    assert!(outcome.duals.date[0] <= -100);
    assert_slackness(&sub, &offered, &outcome);

    let empty = network(0, &[], &[]);
    let outcome = min_cost_flow::<Vec<Arc>>(&empty, &[], None);
    assert!(outcome.flows.is_empty());
    assert_eq!(certify_arcs::<Vec<Arc>>(&empty, &[], &outcome.duals).0, 0);
}

#[test]
fn random_small_networks_match_enumeration_with_slack_duals() {
    let mut rng = Rng::new(7);
    for case in 0..150 {
        let (sub, offered) = random_network(&mut rng);
        let outcome = min_cost_flow(&sub, &offered, None);
        assert_eq!(
            flow_value(&outcome.flows),
            brute_force_flow(&sub, &offered),
            "case {case}: {offered:?}"
        );
        assert_slackness(&sub, &offered, &outcome);
    }
}

#[test]
fn a_warm_start_after_barring_an_arc_reaches_the_new_optimum() {
    // As a branch does: bar an arc the flow used and re-solve from the
    // previous prices with a single refine.
    let mut rng = Rng::new(11);
    let mut barred = 0;
    for case in 0..80 {
        let (sub, mut offered) = random_network(&mut rng);
        let first = min_cost_flow(&sub, &offered, None);
        let Some(c) = (0..offered.len()).find(|&c| !first.flows[c].is_empty()) else {
            continue;
        };
        let used = first.flows[c][0].0;
        offered[c].retain(|a| *a != used);
        barred += 1;
        let warm = min_cost_flow(&sub, &offered, Some(&first.prices));
        assert_eq!(
            flow_value(&warm.flows),
            brute_force_flow(&sub, &offered),
            "case {case}"
        );
        assert_slackness(&sub, &offered, &warm);
    }
    assert!(barred > 40, "too few cases barred an arc: {barred}");
}

#[test]
fn a_flow_cut_short_by_its_deadline_is_feasible_with_a_valid_bound() {
    // A deadline already past stops cost scaling after its first refine:
    // with costs up to 60 scaled by at least 5, that is epsilon >= 18, so
    // there is always a later one. What is left must still be a flow of the
    // network, no cheaper than the optimum, and its duals must bound the
    // optimum from below.
    let mut rng = Rng::new(13);
    let mut cut = 0;
    for case in 0..150 {
        let (sub, offered) = random_network(&mut rng);
        let optimum = brute_force_flow(&sub, &offered);
        let outcome = min_cost_flow_until(&sub, &offered, Some((Instant::now(), 0.0)));
        let load = loads(&sub, &outcome.flows);
        for (c, class) in sub.classes.iter().enumerate() {
            assert!(load.class[c] <= class.members.len() as i64, "case {case}");
        }
        for (d, &capacity) in sub.date_capacity.iter().enumerate() {
            assert!(load.date[d] <= capacity, "case {case}");
        }
        for (b, bin) in sub.bins.iter().enumerate() {
            assert!(load.bin[b] <= bin.capacity, "case {case}");
        }
        assert!(flow_value(&outcome.flows) >= optimum, "case {case}");
        assert!(
            outcome
                .duals
                .date
                .iter()
                .chain(&outcome.duals.bin)
                .all(|&d| d <= 0)
        );
        let (bound, _) = certify_arcs(&sub, &offered, &outcome.duals);
        assert!(
            bound <= optimum,
            "case {case}: bound {bound} above {optimum}"
        );
        if outcome.cut_short {
            cut += 1;
        } else {
            assert_eq!(flow_value(&outcome.flows), optimum, "case {case}");
        }
    }
    assert!(cut > 100, "too few flows were cut short: {cut}");
}

#[test]
fn fits_refuses_costs_that_cost_scaling_could_overflow() {
    let mut problem = testkit::problem(
        vec![slot("s1", "cardiology", "c1", 1, 1)],
        vec![referral("r1", "p1", "cardiology", Priority::Routine, 10)],
    );
    let subs = network::build(&problem, 1);
    // Five nodes (class, bin, date, sink, and one spare): the largest arc
    // cost times 4 · 5² must stay below i64::MAX.
    problem.weights.unallocated = i64::MAX / 200;
    assert!(fits(&problem, &subs[0]));
    problem.weights.unallocated = i64::MAX / 50;
    assert!(!fits(&problem, &subs[0]));
}
