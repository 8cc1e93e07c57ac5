// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "../utils/Test.sol";
import {Roster} from "../../contracts/din/Roster.sol";

contract RosterHarness {
    using Roster for Roster.Data;

    Roster.Data internal r;

    function add() external returns (uint256) {
        return r.add();
    }

    function remove(uint256 index) external returns (uint256) {
        return r.remove(index);
    }

    function draw(uint256 round) external returns (uint256) {
        return r.draw(round);
    }

    function size() external view returns (uint256) {
        return r.size;
    }

    function seatAt(uint256 round, uint256 position) external view returns (uint256) {
        return r.seatAt(round, position);
    }

    function placeAt(uint256 round, uint256 index) external view returns (bool, uint256) {
        return r.placeAt(round, index);
    }
}

/// @dev The roster a round is drawn with stays dense, holds exactly the members not removed before
/// that round, and never changes afterwards, whatever is removed later.
contract DinRosterTest is Test {
    uint256 constant E = 20;
    uint256 constant ROUNDS = 6;

    function test_removalMovesTheLastMemberAndKeepsThePast() public {
        RosterHarness h = new RosterHarness();
        for (uint256 i = 0; i < 4; i++) {
            h.add();
        }
        h.draw(0);
        h.draw(1);
        assertEq(h.remove(1), 2, "from the first round not drawn"); // member 3 takes position 1
        assertEq(h.size(), 3, "one fewer");
        assertEq(h.seatAt(1, 1), 1, "round 1 unchanged");
        assertEq(h.seatAt(2, 1), 3, "moved in from round 2");
        (bool active, uint256 p) = h.placeAt(1, 3);
        assertTrue(active && p == 3, "member 3 at its own place in round 1");
        (active, p) = h.placeAt(2, 3);
        assertTrue(active && p == 1, "member 3 at position 1 from round 2");
        (active,) = h.placeAt(2, 1);
        assertTrue(!active, "member 1 gone from round 2");
        vm.expectRevert(abi.encodeWithSelector(Roster.NotInRoster.selector, 1));
        h.remove(1);
        vm.expectRevert(abi.encodeWithSelector(Roster.NotInRoster.selector, 4));
        h.remove(4);
        vm.expectRevert(abi.encodeWithSelector(Roster.RoundAlreadyDrawn.selector, 1, 2));
        h.draw(1); // a drawn round cannot be drawn again (its roster would change)
        vm.expectRevert(Roster.RosterFrozen.selector);
        h.add(); // no enrolment after a removal: indices would no longer be initial positions
    }

    function testFuzz_roster_denseExactAndFrozenOnceDrawn(uint256 seed) public {
        RosterHarness h = new RosterHarness();
        for (uint256 i = 0; i < E; i++) {
            assertEq(h.add(), i, "index = enrolment order");
        }
        uint256[] memory removedFrom = new uint256[](E); // round + 1 (0 = never)
        uint256[][] memory drawn = new uint256[][](ROUNDS);
        for (uint256 r = 0; r < ROUNDS; r++) {
            // removals recorded before round r is drawn take effect from round r
            uint256 removals = uint256(keccak256(abi.encode(seed, r))) % 4;
            for (uint256 k = 0; k < removals && h.size() > 1; k++) {
                uint256 pick = uint256(keccak256(abi.encode(seed, r, k))) % E;
                if (removedFrom[pick] != 0) continue;
                assertEq(h.remove(pick), r, "effective from the round about to be drawn");
                removedFrom[pick] = r + 1;
            }
            assertEq(h.draw(r), h.size(), "draw returns the roster size");
            drawn[r] = new uint256[](h.size());
            for (uint256 p = 0; p < h.size(); p++) {
                drawn[r][p] = h.seatAt(r, p);
            }
        }
        // more removals after the last draw must not touch any drawn round
        for (uint256 i = 0; i < E && h.size() > 1; i++) {
            if (removedFrom[i] == 0 && uint256(keccak256(abi.encode(seed, "late", i))) % 3 == 0) {
                h.remove(i);
                removedFrom[i] = ROUNDS + 1;
            }
        }
        for (uint256 r = 0; r < ROUNDS; r++) {
            bool[] memory seen = new bool[](E);
            for (uint256 p = 0; p < drawn[r].length; p++) {
                uint256 m = h.seatAt(r, p);
                assertEq(m, drawn[r][p], "a drawn round's roster never changes");
                assertTrue(!seen[m], "no member twice");
                seen[m] = true;
                (bool active, uint256 q) = h.placeAt(r, m);
                assertTrue(active && q == p, "place and seat agree");
            }
            for (uint256 m = 0; m < E; m++) {
                bool eligible = removedFrom[m] == 0 || r + 1 < removedFrom[m];
                assertTrue(seen[m] == eligible, "exactly the members not removed before round r");
                (bool active,) = h.placeAt(r, m);
                assertTrue(active == eligible, "placeAt knows who is out");
            }
        }
    }
}
