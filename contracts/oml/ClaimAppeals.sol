// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Claims, IClaimAppeals} from "./Claims.sol";
import {Staking} from "../core/Staking.sol";

/// @title ClaimAppeals
/// @notice Appeals against a verifier majority. A claim decided by `Claims.finalize` (Confirmed or
/// Rejected) holds its payouts for `appealWindow`; within it the losing side (the host of a
/// confirmed claim, the prover of a rejected one) may appeal once by posting `bond`. The DAO decides
/// the appeal by a vote (a Safety proposal whose allow-list holds `decide`); the governor executes
/// `decide(claimId, reverse)`.
/// - Reversed: `Claims.overturn` flips the outcome and pays it out (a reversed confirmation gives
///   the host its slashed stake back and the bond; a reversed rejection slashes the host now and
///   pays the prover and community), the appellant gets its bond back, and every verifier that voted
///   with the overturned majority can be slashed `overturnPenalty` (capped at its stake, paid to the
///   appellant) through `penaliseVerifier`, on top of the `verifierPenalty` Claims takes in
///   `settleVerifier` for voting against the (new) outcome.
/// - Upheld (or not decided within `decisionWindow`, then anyone may `lapse` it): the bond goes to
///   the winning side and the claim's held payouts can be released.
/// @dev Needs Claims' `setAppeals(this)` and Staking.MODULE_ROLE. The governor is bound once by the
/// deployer after the DAO is deployed (`setGovernor`).
contract ClaimAppeals is IClaimAppeals {
    using SafeERC20 for IERC20;

    enum State {
        None,
        Pending,
        Upheld,
        Reversed
    }

    struct Appeal {
        address appellant; // the losing side: host of a confirmed claim, prover of a rejected one
        address counterparty; // the winning side: gets the bond if the outcome is upheld
        uint64 filedAt;
        Claims.Status appealed; // the outcome appealed against
        State state;
    }

    /// @notice Parameters (LoyalToken wei and seconds).
    /// @param bond posted by the appellant; returned if reversed, to the winning side if upheld.
    /// @param appealWindow seconds after `finalize` during which an appeal may be filed.
    /// @param decisionWindow seconds after filing within which the DAO must decide; later the
    /// appeal lapses (outcome upheld).
    /// @param overturnPenalty stake slashed from each verifier that voted with an overturned majority.
    struct Config {
        uint256 bond;
        uint64 appealWindow;
        uint64 decisionWindow;
        uint256 overturnPenalty;
    }

    Claims public immutable claims;
    IERC20 public immutable token;
    Staking public immutable staking;
    uint256 public immutable bond;
    uint64 public immutable appealWindow;
    uint64 public immutable decisionWindow;
    uint256 public immutable overturnPenalty;
    address private immutable _deployer;
    /// @notice The DAO governor whose executed proposals decide appeals (0 until bound).
    address public governor;

    mapping(uint256 claimId => Appeal) private _appeals;
    mapping(uint256 claimId => mapping(address verifier => bool)) public penalised;

    event GovernorSet(address indexed governor);
    event AppealFiled(uint256 indexed claimId, address indexed appellant, Claims.Status appealed, uint256 bond);
    /// @notice The appeal of `claimId` was decided: `reversed` by the DAO, or upheld (`lapsed`: by timeout).
    event AppealDecided(uint256 indexed claimId, bool reversed, bool lapsed, address bondTo);
    event VerifierPenalised(uint256 indexed claimId, address indexed verifier, uint256 amount, address paidTo);

    error BadConfig();
    error GovernorAlreadySet();
    error NotGovernor(address caller);
    /// @notice Only a claim decided by `finalize` whose payouts are still held can be appealed.
    error ClaimNotAppealable(uint256 claimId, Claims.Status status);
    error AppealWindowClosed(uint256 claimId, uint64 deadline);
    error NotLosingSide(address caller, uint256 claimId);
    error AlreadyAppealed(uint256 claimId);
    error BondNotPosted(uint256 required, uint256 allowance, uint256 balance);
    error NoPendingAppeal(uint256 claimId);
    error DecisionWindowOpen(uint256 claimId, uint64 deadline);
    error NotReversed(uint256 claimId);
    error NotOverturnedMajority(address verifier, uint256 claimId);
    error AlreadyPenalised(address verifier, uint256 claimId);

    constructor(Claims claims_, Staking staking_, Config memory config) {
        if (config.bond == 0 || config.appealWindow == 0 || config.decisionWindow == 0) revert BadConfig();
        claims = claims_;
        token = claims_.token();
        staking = staking_;
        bond = config.bond;
        appealWindow = config.appealWindow;
        decisionWindow = config.decisionWindow;
        overturnPenalty = config.overturnPenalty;
        _deployer = msg.sender;
    }

    /// @notice Bind the DAO governor that decides appeals (deployer only, once).
    function setGovernor(address governor_) external {
        if (msg.sender != _deployer || governor != address(0) || governor_ == address(0)) revert GovernorAlreadySet();
        governor = governor_;
        emit GovernorSet(governor_);
    }

    /// @notice Appeal the outcome of claim `claimId` (the losing side only, once per claim, within
    /// `appealWindow` of its decision), posting `bond` (needs an approval).
    function appeal(uint256 claimId) external {
        Claims.Claim memory c = claims.claim(claimId);
        uint64 decided = claims.decidedAt(claimId);
        if (decided == 0 || claims.released(claimId)) revert ClaimNotAppealable(claimId, c.status);
        if (_appeals[claimId].state != State.None) revert AlreadyAppealed(claimId);
        uint64 deadline = decided + appealWindow;
        if (block.timestamp > deadline) revert AppealWindowClosed(claimId, deadline);
        bool confirmed = c.status == Claims.Status.Confirmed;
        address loser = confirmed ? c.host : c.prover;
        if (msg.sender != loser) revert NotLosingSide(msg.sender, claimId);
        uint256 allowance = token.allowance(msg.sender, address(this));
        uint256 balance = token.balanceOf(msg.sender);
        if (allowance < bond || balance < bond) revert BondNotPosted(bond, allowance, balance);
        _appeals[claimId] = Appeal({
            appellant: msg.sender,
            counterparty: confirmed ? c.prover : c.host,
            filedAt: uint64(block.timestamp),
            appealed: c.status,
            state: State.Pending
        });
        emit AppealFiled(claimId, msg.sender, c.status, bond);
        token.safeTransferFrom(msg.sender, address(this), bond);
    }

    /// @notice Decide the pending appeal of `claimId` (the DAO governor only, executing a passed
    /// proposal): `reverse` overturns the claim's outcome, otherwise it is upheld.
    function decide(uint256 claimId, bool reverse) external {
        if (msg.sender != governor) revert NotGovernor(msg.sender);
        Appeal storage a = _pending(claimId);
        if (!reverse) return _uphold(claimId, a, false);
        a.state = State.Reversed;
        emit AppealDecided(claimId, true, false, a.appellant);
        claims.overturn(claimId);
        token.safeTransfer(a.appellant, bond);
    }

    /// @notice Close an appeal the DAO did not decide within `decisionWindow`: the outcome stands
    /// and the bond goes to the winning side. Anyone may call it.
    function lapse(uint256 claimId) external {
        Appeal storage a = _pending(claimId);
        uint64 deadline = a.filedAt + decisionWindow;
        if (block.timestamp <= deadline) revert DecisionWindowOpen(claimId, deadline);
        _uphold(claimId, a, true);
    }

    /// @notice Slash `overturnPenalty` (capped at its stake) from `verifier`, which voted with the
    /// majority the DAO overturned on claim `claimId`, and pay it to the appellant. Anyone, once per pair.
    function penaliseVerifier(uint256 claimId, address verifier) external {
        Appeal storage a = _appeals[claimId];
        if (a.state != State.Reversed) revert NotReversed(claimId);
        if (penalised[claimId][verifier]) revert AlreadyPenalised(verifier, claimId);
        if (
            !claims.hasVoted(claimId, verifier)
                || claims.votedConfirm(claimId, verifier) != (a.appealed == Claims.Status.Confirmed)
        ) revert NotOverturnedMajority(verifier, claimId);
        uint256 slashable = staking.slashableOf(verifier);
        uint256 amount = overturnPenalty < slashable ? overturnPenalty : slashable;
        penalised[claimId][verifier] = true;
        emit VerifierPenalised(claimId, verifier, amount, a.appellant);
        if (amount != 0) {
            staking.slash(verifier, amount, "OML: voted with a majority the DAO overturned");
            staking.payOutSlashed(a.appellant, amount);
        }
    }

    /// @notice Whether the outcome of `claimId` can no longer change: decided by `finalize`, and
    /// either its appeal window passed unappealed or its appeal was decided (or lapsed).
    function isFinal(uint256 claimId) external view returns (bool) {
        State s = _appeals[claimId].state;
        if (s == State.Pending) return false;
        if (s != State.None) return true;
        uint64 decided = claims.decidedAt(claimId);
        return decided != 0 && block.timestamp > decided + appealWindow;
    }

    /// @notice The appeal record of `claimId` (state None if never appealed).
    function appealOf(uint256 claimId) external view returns (Appeal memory) {
        return _appeals[claimId];
    }

    function _pending(uint256 claimId) private view returns (Appeal storage a) {
        a = _appeals[claimId];
        if (a.state != State.Pending) revert NoPendingAppeal(claimId);
    }

    function _uphold(uint256 claimId, Appeal storage a, bool lapsed) private {
        a.state = State.Upheld;
        emit AppealDecided(claimId, false, lapsed, a.counterparty);
        token.safeTransfer(a.counterparty, bond);
    }
}
