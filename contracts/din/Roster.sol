// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Roster
/// @notice The evaluators eligible in each round of a task, as a dense array that shrinks when an
/// evaluator is barred, with every earlier round's array still readable in O(1)-ish.
/// @dev Members are numbered by enrolment (index 0, 1, ...) and start at position = index. Removing
/// a member from round `fromRound` on moves the last member into its position (swap-and-pop), so
/// positions [0, size) stay dense and a round's assignment can be a permutation of [0, size). Each
/// move is recorded as (fromRound, value) in the history of the position (value = member index)
/// and of the moved member (value = position + 1, 0 = removed). A lookup for round r takes the
/// newest history entry with fromRound <= r; histories are appended in non-decreasing fromRound
/// order. Removals are only ever recorded from a round that has not been drawn yet, so the roster
/// of a drawn round never changes. A history grows by one entry per removal that touches it, so a
/// lookup costs at most one storage read per earlier removal at that position (in practice 0-2).
library Roster {
    struct Move {
        uint32 fromRound;
        uint32 value;
    }

    struct Data {
        uint32 added; // members ever added
        uint32 size; // members in the roster of the next round to be drawn
        mapping(uint256 position => Move[]) seats;
        mapping(uint256 index => Move[]) places;
    }

    error RosterFrozen();
    error NotInRoster(uint256 index);

    /// @notice Add a member (before any removal); returns its index, which is also its position.
    function add(Data storage r) internal returns (uint256 index) {
        if (r.size != r.added) revert RosterFrozen();
        index = r.added;
        r.added += 1;
        r.size += 1;
    }

    /// @notice Remove member `index` from round `fromRound` on (rounds before keep it).
    function remove(Data storage r, uint256 index, uint256 fromRound) internal {
        (bool active, uint256 p) = placeAt(r, type(uint256).max, index);
        if (!active) revert NotInRoster(index);
        uint256 last = r.size - 1;
        if (p != last) {
            uint256 moved = seatAt(r, type(uint256).max, last);
            r.seats[p].push(Move(uint32(fromRound), uint32(moved)));
            r.places[moved].push(Move(uint32(fromRound), uint32(p + 1)));
        }
        r.places[index].push(Move(uint32(fromRound), 0));
        r.size = uint32(last);
    }

    /// @notice The member at `position` in round `round`'s roster.
    function seatAt(Data storage r, uint256 round, uint256 position) internal view returns (uint256 index) {
        Move[] storage h = r.seats[position];
        for (uint256 i = h.length; i > 0; i--) {
            Move storage m = h[i - 1];
            if (m.fromRound <= round) return m.value;
        }
        return position;
    }

    /// @notice Whether member `index` is in round `round`'s roster, and at which position.
    function placeAt(Data storage r, uint256 round, uint256 index) internal view returns (bool active, uint256 position) {
        Move[] storage h = r.places[index];
        for (uint256 i = h.length; i > 0; i--) {
            Move storage m = h[i - 1];
            if (m.fromRound <= round) return m.value == 0 ? (false, 0) : (true, m.value - 1);
        }
        return (true, index);
    }
}
