//! A specialised min-cost flow for one sub-problem's aggregated network.
//!
//! HiGHS's simplex needs ~0.1-0.5 s per sub-problem LP at trust size because
//! the LPs are large and degenerate; this network has a few hundred hubs and a
//! few thousand classes, and successive shortest paths on it take milliseconds.
//! Nothing here has to be trusted: the potentials it ends with are turned into
//! LP duals and checked in exact integer arithmetic by `certify`, exactly as
//! HiGHS's duals would be.
//!
//! Nodes: classes, bins, dates, and the sink `T`. Arcs: class -> date hub or
//! bin (the model's cost minus the unallocated cost), class -> `T` (cost 0:
//! staying unallocated), bin -> date (the bin's capacity), date -> `T` (the
//! date's capacity). Every unit of every class is routed to `T` one source at a
//! time along a shortest residual path (Dijkstra on reduced costs with node
//! potentials). Each such step keeps the flow optimal for the units routed so
//! far, so after the last unit it is optimal; "unallocated" is just the direct
//! arc, and a path may bump another referral onto it or to a later date.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::lp::Duals;
use super::network::{Arc, Hub, Subproblem};
use crate::validate::Problem;

const INF: i64 = i64::MAX / 4;

#[derive(Debug)]
struct Graph {
    /// Per edge (forward at even index, its reverse at odd): head, residual
    /// capacity, cost.
    head: Vec<u32>,
    residual: Vec<i64>,
    cost: Vec<i64>,
    /// CSR adjacency: edges leaving node v are `adjacency[offset[v]..offset[v + 1]]`.
    offset: Vec<usize>,
    adjacency: Vec<u32>,
}

pub(crate) struct FlowOutcome {
    pub flows: Vec<Vec<(Arc, i64)>>,
    pub duals: Duals,
}

/// Solves the sub-problem's relaxation (no patient-day rule) to optimality,
/// without the arcs of `forbidden` (class, day) pairs.
pub(crate) fn min_cost_flow(
    problem: &Problem,
    sub: &Subproblem,
    forbidden: &HashSet<(usize, i32)>,
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
    for (c, class) in sub.classes.iter().enumerate() {
        let size = class.members.len() as i64;
        let arcs = sub
            .arcs(problem, class)
            .into_iter()
            .filter(|arc| !forbidden.contains(&(c, sub.dates[arc.date as usize])))
            .map(|arc| {
                let head = match arc.hub {
                    Hub::Date(d) => date_node(d),
                    Hub::Bin(b) => bin_node(b),
                };
                (arc, add(c, head, size, arc.cost))
            })
            .collect();
        class_arcs.push(arcs);
        add(c, sink, size, 0);
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
    let mut adjacency = vec![0_u32; tails.len()];
    for (e, &t) in tails.iter().enumerate() {
        adjacency[fill[t as usize]] = e as u32;
        fill[t as usize] += 1;
    }
    let mut graph = Graph {
        head: heads,
        residual: caps,
        cost: costs,
        offset,
        adjacency,
    };

    // Initial potentials: shortest distances from a virtual source joined to
    // every node at cost 0. The zero-flow graph is acyclic (classes -> bins ->
    // dates -> sink), so one pass in that order settles them.
    let mut potential = vec![0_i64; nodes];
    for c in 0..classes {
        for e in graph.offset[c]..graph.offset[c + 1] {
            let e = graph.adjacency[e] as usize;
            if e.is_multiple_of(2) {
                let h = graph.head[e] as usize;
                potential[h] = potential[h].min(graph.cost[e]);
            }
        }
    }
    for (b, bin) in sub.bins.iter().enumerate() {
        let d = date_node(bin.date);
        potential[d] = potential[d].min(potential[bin_node(b as u32)]);
    }
    for d in 0..dates {
        potential[sink] = potential[sink].min(potential[date_node(d as u32)]);
    }

    let mut search = Search::new(nodes);
    for (c, class) in sub.classes.iter().enumerate() {
        let mut supply = class.members.len() as i64;
        while supply > 0 {
            supply -= search.augment(&mut graph, &mut potential, c, sink, supply);
        }
    }

    let flows = class_arcs
        .iter()
        .map(|arcs| {
            arcs.iter()
                .filter_map(|&(arc, e)| {
                    let units = graph.residual[2 * e + 1];
                    (units > 0).then_some((arc, units))
                })
                .collect()
        })
        .collect();
    // LP duals of the capacity rows are the (non-positive) reduced costs of the
    // capacity arcs; see `certify` for how they are checked.
    let reduced = |e: usize| {
        let tail = graph.head[2 * e + 1] as usize;
        let head = graph.head[2 * e] as usize;
        (graph.cost[2 * e] + potential[tail] - potential[head]).min(0)
    };
    let duals = Duals {
        class: vec![0; classes],
        date: date_edge.iter().map(|&e| reduced(e)).collect(),
        bin: bin_edge.iter().map(|&e| reduced(e)).collect(),
    };
    FlowOutcome { flows, duals }
}

/// Dijkstra state reused across augmentations; `stamp` avoids clearing arrays.
struct Search {
    distance: Vec<i64>,
    via: Vec<u32>,
    stamp: Vec<u32>,
    done: Vec<u32>,
    round: u32,
    popped: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl Search {
    fn new(nodes: usize) -> Self {
        Search {
            distance: vec![INF; nodes],
            via: vec![u32::MAX; nodes],
            stamp: vec![0; nodes],
            done: vec![0; nodes],
            round: 0,
            popped: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// Sends up to `supply` units from `source` to `sink` along one shortest
    /// residual path; returns the units sent (at least one: the class's own
    /// arc to the sink always has residual capacity while it has supply).
    fn augment(
        &mut self,
        graph: &mut Graph,
        potential: &mut [i64],
        source: usize,
        sink: usize,
        supply: i64,
    ) -> i64 {
        self.round += 1;
        let round = self.round;
        self.popped.clear();
        self.heap.clear();
        self.distance[source] = 0;
        self.stamp[source] = round;
        self.heap.push(Reverse((0, source as u32)));
        let mut sink_distance = INF;
        while let Some(Reverse((dist, v))) = self.heap.pop() {
            let v = v as usize;
            if self.done[v] == round || dist > self.distance[v] {
                continue;
            }
            self.done[v] = round;
            self.popped.push(v as u32);
            if v == sink {
                sink_distance = dist;
                break;
            }
            for i in graph.offset[v]..graph.offset[v + 1] {
                let e = graph.adjacency[i] as usize;
                if graph.residual[e] <= 0 {
                    continue;
                }
                let w = graph.head[e] as usize;
                let next = dist + graph.cost[e] + potential[v] - potential[w];
                if self.stamp[w] != round || next < self.distance[w] {
                    self.stamp[w] = round;
                    self.distance[w] = next;
                    self.via[w] = e as u32;
                    self.heap.push(Reverse((next, w as u32)));
                }
            }
        }
        // Potentials of settled nodes move by their distance (capped at the
        // sink's), which keeps every residual reduced cost non-negative and
        // makes the path's arcs tight.
        for &v in &self.popped {
            let v = v as usize;
            potential[v] += self.distance[v] - sink_distance;
        }
        let mut units = supply;
        let mut v = sink;
        while v != source {
            let e = self.via[v] as usize;
            units = units.min(graph.residual[e]);
            v = graph.head[e ^ 1] as usize;
        }
        let mut v = sink;
        while v != source {
            let e = self.via[v] as usize;
            graph.residual[e] -= units;
            graph.residual[e ^ 1] += units;
            v = graph.head[e ^ 1] as usize;
        }
        units
    }
}
