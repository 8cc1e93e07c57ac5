// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Roster
/// @notice The evaluators eligible in each round of a task, as a dense array that shrinks when an
/// evaluator is barred, with every earlier round's array still readable in O(1)-ish.
/// @dev Members are numbered by enrolment (index 0, 1, ...) and start at position = index. `draw`
/// freezes a round's roster. Removing a member takes effect from the first round not drawn yet
/// (`fromRound`) and moves the last member into its position (swap-and-pop), so
/// positions [0, size) stay dense and a round's assignment can be a permutation of [0, size). Each
/// move is recorded as (fromRound, value) in the history of the position (value = member index)
/// and of the moved member (value = position + 1, 0 = removed). A lookup for round r takes the
/// newest history entry with fromRound <= r; histories are appended in non-decreasing fromRound
/// order. Removals only ever take effect from a round not drawn yet, so the roster of a drawn round
/// never changes. A history grows by one entry per removal that touches it, so a
/// lookup costs at most one storage read per earlier removal at that position (in practice 0-2).
library Roster {
    struct Move {
        uint32 fromRound;
        uint32 value;
    }

    struct Data {
        uint32 added; // members ever added
        uint32 size; // members in the roster of the next round to be drawn
        uint32 drawn; // one more than the last round drawn (removals take effect from this round)
        mapping(uint256 position => Move[]) seats;
        mapping(uint256 index => Move[]) places;
    }

    error RosterFrozen();
    error NotInRoster(uint256 index);
    error RoundAlreadyDrawn(uint256 round, uint256 drawn);

    /// @notice Add a member (before any removal); returns its index, which is also its position.
    function add(Data storage r) internal returns (uint256 index) {
        if (r.size != r.added) revert RosterFrozen();
        index = r.added;
        r.added += 1;
        r.size += 1;
    }

    /// @notice Freeze round `round`'s roster (rounds are drawn in increasing order, each at most
    /// once; rounds may be skipped). Returns its size.
    function draw(Data storage r, uint256 round) internal returns (uint256 size) {
        if (round < r.drawn) revert RoundAlreadyDrawn(round, r.drawn);
        r.drawn = uint32(round + 1);
        return r.size;
    }

    /// @notice Remove member `index` from every round not drawn yet; returns the first such round.
    function remove(Data storage r, uint256 index) internal returns (uint256 fromRound) {
        if (index >= r.added) revert NotInRoster(index);
        (bool active, uint256 p) = placeAt(r, type(uint256).max, index);
        if (!active) revert NotInRoster(index);
        fromRound = r.drawn;
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
