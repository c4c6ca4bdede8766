//! A forest of regression trees in one array: children by index, leaves as
//! nodes without a feature, every node's value kept for the path
//! contributions. This is both what is stored (serde) and what scores.

use serde::{Deserialize, Serialize};

pub const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// [`LEAF`] for a leaf.
    pub feature: u32,
    /// `x < threshold` goes left.
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    /// Where a missing (NaN) value goes: `left` or `right`, learned.
    pub missing: u32,
    /// The node's output if it were a leaf (learning rate applied).
    pub value: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub base: f64,
    pub roots: Vec<u32>,
    pub nodes: Vec<Node>,
}

impl Forest {
    #[inline]
    fn child(node: &Node, x: f64) -> u32 {
        if x.is_nan() {
            node.missing
        } else if x < node.threshold {
            node.left
        } else {
            node.right
        }
    }

    /// The raw score (log-odds) of one row.
    #[inline]
    pub fn score(&self, row: &[f64]) -> f64 {
        let mut s = self.base;
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            while node.feature != LEAF {
                node = &self.nodes[Self::child(node, row[node.feature as usize]) as usize];
            }
            s += node.value;
        }
        s
    }

    /// Adds each feature's path contributions to `out` (Saabas: each split on
    /// the way to the leaf credits its feature with the change of node value);
    /// returns the bias (base plus every root's value): bias + sum(out) = score.
    pub fn contributions(&self, row: &[f64], out: &mut [f64]) -> f64 {
        let mut bias = self.base;
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            bias += node.value;
            while node.feature != LEAF {
                let next = &self.nodes[Self::child(node, row[node.feature as usize]) as usize];
                out[node.feature as usize] += next.value - node.value;
                node = next;
            }
        }
        bias
    }
}
