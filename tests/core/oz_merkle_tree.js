#!/usr/bin/env node
// The reference for common/merkle.py: OpenZeppelin's own StandardMerkleTree (npm @openzeppelin/merkle-tree).
// Reads a JSON list of cases {types, values, sortLeaves} on stdin (uintN values as decimal or 0x strings,
// bytes32 as 0x hex) and prints, per case, {root, proofs} with proofs[i] the proof of values[i].
"use strict";
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = cases.map(({ types, values, sortLeaves }) => {
  const typed = values.map(v => v.map((x, j) => (types[j].startsWith("uint") ? BigInt(x) : x)));
  const tree = StandardMerkleTree.of(typed, types, { sortLeaves });
  return { root: tree.root, proofs: typed.map((_, i) => tree.getProof(i)) };
});
process.stdout.write(JSON.stringify(out) + "\n");
