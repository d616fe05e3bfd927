//! A specialised min-cost flow for one sub-problem's aggregated network: the
//! default engine's solver for stage 1 and for every branch-and-bound node.
//!
//! HiGHS's simplex needs 0.1-0.5 s per sub-problem LP at trust size (the LPs
//! are large and degenerate); cost scaling on the network takes ~30 ms.
//! Nothing here has to be trusted: the potentials it ends with are turned into
//! LP duals and checked in exact integer arithmetic by `certify`, exactly as
//! HiGHS's duals are.
//!
//! Nodes: classes, bins, dates, and the sink `T`. Arcs: class -> date hub or
//! bin (the model's cost minus the unallocated cost), class -> `T` (cost 0:
//! staying unallocated), bin -> date (the bin's capacity), date -> `T` (the
//! date's capacity). Each class supplies its size and `T` absorbs it all, so a
//! feasible flow always exists (everyone unallocated) and "unallocated" is just
//! the direct arc. Measured alternatives: successive shortest paths (one
//! Dijkstra per unit) scanned half the graph per unit and was ~40% slower.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::certificate::Duals;
use super::network::{Arc, Hub, Subproblem};
use crate::validate::Problem;

#[derive(Debug)]
struct Graph {
    /// Per edge, stored in CSR order (the edges leaving node v are positions
    /// `offset[v]..offset[v + 1]`, so a scan reads memory in sequence): head,
    /// residual capacity, cost, and the position of its reverse edge.
    head: Vec<u32>,
    residual: Vec<i64>,
    cost: Vec<i64>,
    reverse: Vec<u32>,
    offset: Vec<usize>,
    /// Position of each edge as built (forward `2k`, reverse `2k + 1`).
    position: Vec<u32>,
}

impl Graph {
    /// Position of the forward edge of pair `k` (as `add` numbered it).
    fn forward(&self, k: usize) -> usize {
        self.position[2 * k] as usize
    }

    /// Position of the reverse edge of pair `k`.
    fn backward(&self, k: usize) -> usize {
        self.position[2 * k + 1] as usize
    }
}

pub(crate) struct FlowOutcome {
    pub flows: Vec<Vec<(Arc, i64)>>,
    pub duals: Duals,
    /// Final scaled prices, to warm-start a re-solve of a slightly changed network.
    pub prices: Vec<i64>,
    /// Whether a deadline stopped cost scaling after a refine phase short of
    /// the last: the flow is then feasible but only epsilon-optimal, and the
    /// duals, still valid for `certify` (any duals are), prove nothing.
    pub cut_short: bool,
}

/// Solves the sub-problem's relaxation (no patient-day rule) to optimality
/// over the arcs offered in `offered` (per class).
///
/// `warm` are prices from an earlier solve of the same sub-problem; with them
/// a single refine at the finest epsilon suffices when little has changed.
pub(crate) fn min_cost_flow<A: AsRef<[Arc]>>(
    sub: &Subproblem,
    offered: &[A],
    warm: Option<&[i64]>,
) -> FlowOutcome {
    solve_from(sub, offered, warm, None, None)
}

/// [`min_cost_flow`] from cold that gives up at the first refine phase to
/// end after `deadline` (start, seconds) has passed, with the feasible flow
/// that phase left (see [`FlowOutcome::cut_short`]). Between phases is the
/// sound place to stop: every node's excess is then zero, so the flow is a
/// flow of the network, which mid-phase it is not.
pub(crate) fn min_cost_flow_until<A: AsRef<[Arc]>>(
    sub: &Subproblem,
    offered: &[A],
    deadline: Option<(Instant, f64)>,
) -> FlowOutcome {
    solve_from(sub, offered, None, None, deadline)
}

/// [`min_cost_flow`] warm-started from an earlier solve of the same
/// sub-problem over a superset of `offered` (a branch bars arcs): its final
/// `prices` and its `flows`. The flow is restored first, units on arcs no
/// longer offered going back to "unallocated", so the single refine only has
/// to reroute what the bars displaced instead of the whole supply.
pub(crate) fn min_cost_flow_from<A: AsRef<[Arc]>>(
    sub: &Subproblem,
    offered: &[A],
    prices: &[i64],
    flows: &[Vec<(Arc, i64)>],
) -> FlowOutcome {
    solve_from(sub, offered, Some(prices), Some(flows), None)
}

fn solve_from<A: AsRef<[Arc]>>(
    sub: &Subproblem,
    offered: &[A],
    warm: Option<&[i64]>,
    start: Option<&[Vec<(Arc, i64)>]>,
    deadline: Option<(Instant, f64)>,
) -> FlowOutcome {
    let classes = sub.classes.len();
    let bins = sub.bins.len();
    let dates = sub.dates.len();
    let bin_node = |b: u32| classes + b as usize;
    let date_node = |d: u32| classes + bins + d as usize;
    let sink = classes + bins + dates;
    let nodes = sink + 1;

    // Edge list first, then CSR.
    let mut tails: Vec<u32> = Vec::new();
    let mut heads: Vec<u32> = Vec::new();
    let mut caps: Vec<i64> = Vec::new();
    let mut costs: Vec<i64> = Vec::new();
    let mut add = |tail: usize, head: usize, cap: i64, cost: i64| {
        tails.extend([tail as u32, head as u32]);
        heads.extend([head as u32, tail as u32]);
        caps.extend([cap, 0]);
        costs.extend([cost, -cost]);
        tails.len() / 2 - 1
    };
    let mut class_arcs: Vec<Vec<(Arc, usize)>> = Vec::with_capacity(classes);
    let mut sink_edge: Vec<usize> = Vec::with_capacity(classes);
    for (c, class) in sub.classes.iter().enumerate() {
        let size = class.members.len() as i64;
        let arcs = offered[c]
            .as_ref()
            .iter()
            .map(|&arc| {
                let head = match arc.hub {
                    Hub::Date(d) => date_node(d),
                    Hub::Bin(b) => bin_node(b),
                };
                (arc, add(c, head, size, arc.cost))
            })
            .collect();
        class_arcs.push(arcs);
        sink_edge.push(add(c, sink, size, 0));
    }
    let bin_edge: Vec<usize> = sub
        .bins
        .iter()
        .enumerate()
        .map(|(b, bin)| add(bin_node(b as u32), date_node(bin.date), bin.capacity, 0))
        .collect();
    let date_edge: Vec<usize> = (0..dates)
        .map(|d| add(date_node(d as u32), sink, sub.date_capacity[d], 0))
        .collect();

    let mut offset = vec![0_usize; nodes + 1];
    for &t in &tails {
        offset[t as usize + 1] += 1;
    }
    for v in 0..nodes {
        offset[v + 1] += offset[v];
    }
    let mut fill = offset.clone();
    let mut position = vec![0_u32; tails.len()];
    for (e, &t) in tails.iter().enumerate() {
        position[e] = fill[t as usize] as u32;
        fill[t as usize] += 1;
    }
    let edges = tails.len();
    let mut head = vec![0_u32; edges];
    let mut residual = vec![0_i64; edges];
    let mut cost = vec![0_i64; edges];
    let mut reverse = vec![0_u32; edges];
    for e in 0..edges {
        let p = position[e] as usize;
        head[p] = heads[e];
        residual[p] = caps[e];
        cost[p] = costs[e];
        reverse[p] = position[e ^ 1];
    }
    let initial_residual = if start.is_some() {
        residual.clone()
    } else {
        Vec::new()
    };
    let mut graph = Graph {
        head,
        residual,
        cost,
        reverse,
        offset,
        position,
    };

    let mut supply = vec![0_i64; nodes];
    for (c, class) in sub.classes.iter().enumerate() {
        supply[c] = class.members.len() as i64;
        supply[sink] -= class.members.len() as i64;
    }
    if let Some(start) = start.filter(|s| s.len() == classes) {
        // Restore the earlier flow: every class's units on the arcs still
        // offered, the rest unallocated; bins and dates carry what enters
        // them. It was feasible for a superset of these arcs, so it fits.
        let mut into_bin = vec![0_i64; bins];
        let mut into_date = vec![0_i64; dates];
        let send = |graph: &mut Graph, k: usize, units: i64| {
            let (forward, backward) = (graph.forward(k), graph.backward(k));
            graph.residual[forward] -= units;
            graph.residual[backward] += units;
        };
        for (c, class) in sub.classes.iter().enumerate() {
            let mut left = class.members.len() as i64;
            for &(arc, units) in &start[c] {
                let Some(&(_, e)) = class_arcs[c]
                    .iter()
                    .find(|(a, _)| a.date == arc.date && a.hub == arc.hub)
                else {
                    continue;
                };
                let units = units.min(left).min(graph.residual[graph.forward(e)]);
                if units <= 0 {
                    continue;
                }
                send(&mut graph, e, units);
                left -= units;
                into_date[arc.date as usize] += units;
                if let Hub::Bin(b) = arc.hub {
                    into_bin[b as usize] += units;
                }
            }
            send(&mut graph, sink_edge[c], left);
        }
        let fits = into_bin
            .iter()
            .zip(&sub.bins)
            .all(|(&units, bin)| units <= bin.capacity)
            && into_date
                .iter()
                .zip(&sub.date_capacity)
                .all(|(&units, &capacity)| units <= capacity);
        if fits {
            for (b, &units) in into_bin.iter().enumerate() {
                send(&mut graph, bin_edge[b], units);
            }
            for (d, &units) in into_date.iter().enumerate() {
                send(&mut graph, date_edge[d], units);
            }
            supply = vec![0; nodes];
        } else {
            // Not a flow of this network after all: start from nothing.
            graph.residual.clone_from(&initial_residual);
        }
    }
    let restored = start.is_some() && supply.iter().all(|&s| s == 0);
    let (potential, prices, cut_short) = cost_scaling(&mut graph, supply, warm, restored, deadline);

    let flows = class_arcs
        .iter()
        .map(|arcs| {
            arcs.iter()
                .filter_map(|&(arc, e)| {
                    let units = graph.residual[graph.backward(e)];
                    (units > 0).then_some((arc, units))
                })
                .collect()
        })
        .collect();
    // LP duals of the capacity rows are the (non-positive) reduced costs of the
    // capacity arcs; see `certify` for how they are checked.
    let reduced = |k: usize| {
        let tail = graph.head[graph.backward(k)] as usize;
        let head = graph.head[graph.forward(k)] as usize;
        (graph.cost[graph.forward(k)] + potential[tail] - potential[head]).min(0)
    };
    let duals = Duals {
        class: vec![0; classes],
        date: date_edge.iter().map(|&e| reduced(e)).collect(),
        bin: bin_edge.iter().map(|&e| reduced(e)).collect(),
    };
    FlowOutcome {
        flows,
        duals,
        prices,
        cut_short,
    }
}

/// Whether cost scaling on this sub-problem stays far inside `i64`: arc costs
/// are at most the largest unallocated cost plus the preference weight in
/// size, scaled costs that times (nodes + 1), and
/// prices fall by at most about nodes times the largest scaled cost.
pub(crate) fn fits(problem: &Problem, sub: &Subproblem) -> bool {
    let largest = sub
        .classes
        .iter()
        .map(|class| i128::from(problem.unallocated_cost(class.representative())))
        .map(|cost| cost + i128::from(problem.weights.preference))
        .max()
        .unwrap_or(0);
    fits_cost(sub, largest)
}

/// [`fits`] for arcs whose costs are at most `largest` in size (for flows
/// over scaled or otherwise modified costs).
pub(crate) fn fits_cost(sub: &Subproblem, largest: i128) -> bool {
    let nodes = (sub.classes.len() + sub.bins.len() + sub.dates.len() + 2) as i128;
    largest.saturating_mul(nodes * nodes * 4) < i128::from(i64::MAX)
}

/// Goldberg-Tarjan cost scaling (push-relabel refine with FIFO discharge) from
/// node supplies; returns integral potentials feasible for the final residual
/// graph (`cost + p[tail] - p[head] >= 0` on every residual edge), the scaled
/// prices, and whether `deadline` cut it short.
///
/// Costs are multiplied by `n + 1`, so the last refine (epsilon 1) leaves a
/// flow that is epsilon-optimal for epsilon < 1/n in original units, which for
/// integer costs means optimal. Cut short after an earlier refine, the flow is
/// feasible and the potentials are the prices rounded down, which need not be
/// feasible for the residual graph (nothing here relies on them being so).
fn cost_scaling(
    graph: &mut Graph,
    supply: Vec<i64>,
    warm: Option<&[i64]>,
    restored: bool,
    deadline: Option<(Instant, f64)>,
) -> (Vec<i64>, Vec<i64>, bool) {
    let nodes = supply.len();
    let scale = nodes as i64 + 1;
    let cost: Vec<i64> = graph.cost.iter().map(|c| c * scale).collect();
    let mut price = match warm {
        Some(prices) if prices.len() == nodes => prices.to_vec(),
        _ => vec![0_i64; nodes],
    };
    let mut excess = supply;
    let mut current = vec![0_usize; nodes];
    let mut queued = vec![false; nodes];
    let mut queue = std::collections::VecDeque::new();
    let mut epsilon = if warm.is_some() {
        1
    } else {
        cost.iter().map(|c| c.abs()).max().unwrap_or(0).max(1)
    };
    // A restored flow with its own final prices is already epsilon-optimal
    // except where the network changed: only edges breaking that need
    // saturating, which keeps the rest of the flow in place.
    let mut slack = if restored { 1 } else { 0 };
    loop {
        epsilon = (epsilon / 16).max(1);
        // Saturate every residual edge with a negative reduced cost (below
        // -epsilon for a restored flow, which is epsilon-optimal elsewhere).
        let threshold = -(epsilon * slack);
        slack = 0;
        for v in 0..nodes {
            // Positions, not an iterator: saturating an edge also writes its
            // reverse, elsewhere in the same array.
            #[allow(clippy::needless_range_loop)]
            for e in graph.offset[v]..graph.offset[v + 1] {
                let w = graph.head[e] as usize;
                let units = graph.residual[e];
                if units > 0 && cost[e] + price[v] - price[w] < threshold {
                    graph.residual[e] = 0;
                    graph.residual[graph.reverse[e] as usize] += units;
                    excess[v] -= units;
                    excess[w] += units;
                }
            }
        }
        global_update(graph, &cost, &mut price, &excess, epsilon);
        let mut since_update = 0_usize;
        for v in 0..nodes {
            current[v] = graph.offset[v];
            if excess[v] > 0 && !queued[v] {
                queued[v] = true;
                queue.push_back(v);
            }
        }
        while let Some(v) = queue.pop_front() {
            queued[v] = false;
            while excess[v] > 0 {
                if current[v] == graph.offset[v + 1] {
                    // Relabel: lower the price just enough to admit one edge.
                    let mut best = i64::MIN;
                    let edges = graph.offset[v]..graph.offset[v + 1];
                    let leaving = graph.residual[edges.clone()]
                        .iter()
                        .zip(&graph.head[edges.clone()])
                        .zip(&cost[edges]);
                    for ((&units, &w), &c) in leaving {
                        if units > 0 {
                            best = best.max(price[w as usize] - c);
                        }
                    }
                    if best == i64::MIN {
                        // No residual edge: cannot happen while a feasible flow exists.
                        break;
                    }
                    price[v] = best - epsilon;
                    current[v] = graph.offset[v];
                    since_update += 1;
                    if since_update >= nodes {
                        // Relabels only look one edge ahead; a global update
                        // prices every node by its distance to a deficit at once.
                        since_update = 0;
                        global_update(graph, &cost, &mut price, &excess, epsilon);
                        current.copy_from_slice(&graph.offset[..nodes]);
                    }
                    continue;
                }
                let e = current[v];
                let w = graph.head[e] as usize;
                if graph.residual[e] > 0 && cost[e] + price[v] - price[w] < 0 {
                    let units = excess[v].min(graph.residual[e]);
                    graph.residual[e] -= units;
                    graph.residual[graph.reverse[e] as usize] += units;
                    excess[v] -= units;
                    excess[w] += units;
                    if excess[w] > 0 && !queued[w] {
                        queued[w] = true;
                        queue.push_back(w);
                    }
                    if graph.residual[e] == 0 {
                        current[v] += 1;
                    }
                } else {
                    current[v] += 1;
                }
            }
        }
        if epsilon == 1 {
            break;
        }
        if super::expired(deadline) {
            // Not optimal, so the residual graph may hold negative cycles and
            // the label correction below might not end: stop at the prices.
            let potential = price.iter().map(|p| p.div_euclid(scale)).collect();
            return (potential, price, true);
        }
    }
    // Integral potentials: start from the scaled prices rounded down and
    // correct labels until every residual edge has a non-negative reduced
    // cost. The flow is optimal, so there is no negative cycle and this ends;
    // starting this close it takes few passes.
    let mut potential: Vec<i64> = price.iter().map(|p| p.div_euclid(scale)).collect();
    let mut queue: std::collections::VecDeque<usize> = (0..nodes).collect();
    let mut queued = vec![true; nodes];
    while let Some(v) = queue.pop_front() {
        queued[v] = false;
        for e in graph.offset[v]..graph.offset[v + 1] {
            if graph.residual[e] <= 0 {
                continue;
            }
            let w = graph.head[e] as usize;
            let limit = potential[v] + graph.cost[e];
            if potential[w] > limit {
                potential[w] = limit;
                if !queued[w] {
                    queued[w] = true;
                    queue.push_back(w);
                }
            }
        }
    }
    (potential, price, false)
}

/// Goldberg's global price update: lowers each node's price by epsilon times
/// its distance to a node with a deficit, where a residual edge's length is 0
/// if admissible and `floor(reduced / epsilon) + 1` otherwise. This keeps
/// epsilon-optimality and opens admissible paths from every excess at once.
fn global_update(graph: &Graph, cost: &[i64], price: &mut [i64], excess: &[i64], epsilon: i64) {
    let nodes = price.len();
    let mut distance = vec![i64::MAX; nodes];
    let mut done = vec![false; nodes];
    let mut heap = BinaryHeap::new();
    let mut waiting = 0_usize;
    for v in 0..nodes {
        if excess[v] < 0 {
            distance[v] = 0;
            heap.push(Reverse((0_i64, v as u32)));
        }
        if excess[v] > 0 {
            waiting += 1;
        }
    }
    // Stop once every node with an excess is settled: all unsettled nodes then
    // take the last settled distance, which keeps every residual edge within
    // epsilon (unsettled-to-settled edges were relaxed to at least that level,
    // settled-to-unsettled edges start at most that level). Most refines end
    // with few excesses near deficits, so this skips most of the graph.
    // Dial's buckets for distances below `limit` (nearly all of them: a
    // length is 0 on an admissible edge and small on a near-admissible one),
    // the heap for the rest. Nodes are settled in the same order of distance
    // as with the heap alone, so the prices are the same.
    let limit = 2 * nodes + 2;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); limit];
    for Reverse((d, v)) in heap.drain() {
        buckets[d as usize].push(v);
    }
    let mut far: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::new();
    let mut level = 0;
    let mut bucket = 0_usize;
    loop {
        let (d, w) = if bucket < limit {
            match buckets[bucket].pop() {
                Some(w) => (bucket as i64, w),
                None => {
                    bucket += 1;
                    continue;
                }
            }
        } else {
            match far.pop() {
                Some(Reverse(entry)) => entry,
                None => break,
            }
        };
        let w = w as usize;
        if done[w] || distance[w] != d {
            continue;
        }
        done[w] = true;
        level = d;
        if excess[w] > 0 {
            waiting -= 1;
            if waiting == 0 {
                break;
            }
        }
        let edges = graph.offset[w]..graph.offset[w + 1];
        let leaving = graph.reverse[edges.clone()]
            .iter()
            .zip(&graph.head[edges.clone()])
            .zip(&cost[edges]);
        for ((&into, &v), &c) in leaving {
            // The reverse of an edge leaving w is an edge entering w, from
            // the leaving edge's head.
            if graph.residual[into as usize] <= 0 {
                continue;
            }
            let v = v as usize;
            if done[v] {
                continue;
            }
            // An edge's reverse costs its negation: read the cost from the
            // leaving edge, next in memory, rather than from its reverse.
            let reduced = price[v] - price[w] - c;
            let length = if reduced < 0 {
                0
            } else {
                reduced / epsilon + 1
            };
            let next = d + length;
            if next < distance[v] {
                distance[v] = next;
                if (next as usize) < limit && next >= 0 {
                    buckets[next as usize].push(v as u32);
                } else {
                    far.push(Reverse((next, v as u32)));
                }
            }
        }
    }
    for v in 0..nodes {
        let d = if done[v] { distance[v] } else { level };
        price[v] -= epsilon * d;
    }
}

#[cfg(test)]
mod tests;
