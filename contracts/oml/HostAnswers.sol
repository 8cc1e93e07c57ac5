// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title HostAnswers
/// @notice The EIP-712 domain of the answers licensed hosts sign. Every answer a host serves carries
/// the host's signature over `Answer(modelId, host, licenceStart, promptHash, completionHash,
/// permissionDigest, time)`, so the answer is evidence by itself: a prover's claim carries it, and
/// neither the prover nor the verifiers need to ask the host again after the key is revealed.
/// @dev Deployed by `Claims` (one per Claims deployment), so the domain binds a signed answer to one
/// chain and one Claims instance; `host`, `modelId` and `licenceStart` bind it to one licence.
/// `SignatureChecker` accepts ERC-1271 hosts (contract wallets) as well as EOAs.
contract HostAnswers is EIP712 {
    bytes32 public constant ANSWER_TYPEHASH = keccak256(
        "Answer(uint256 modelId,address host,uint64 licenceStart,bytes32 promptHash,bytes32 completionHash,"
        "bytes32 permissionDigest,uint64 time)"
    );

    /// @notice One served completion, as the host signs it.
    struct Answer {
        uint256 modelId;
        address host;
        uint64 licenceStart; // HostAgreements.licenceOf(modelId, host).startsAt when the host answered
        bytes32 promptHash; // keccak256 of the prompt's UTF-8 bytes
        bytes32 completionHash; // keccak256 of the completion's UTF-8 bytes
        bytes32 permissionDigest; // UsageLedger digest of the σ(prompt) the host holds, or 0 (none)
        uint64 time; // unix seconds on the host's clock
    }

    constructor() EIP712("Loyal OML HostAnswers", "1") {}

    /// @notice EIP-712 digest of `a` (what the host signs).
    function answerDigest(Answer calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    ANSWER_TYPEHASH,
                    a.modelId,
                    a.host,
                    a.licenceStart,
                    a.promptHash,
                    a.completionHash,
                    a.permissionDigest,
                    a.time
                )
            )
        );
    }

    /// @notice Whether `signature` over `a` is `a.host`'s (ECDSA for an EOA, ERC-1271 for a contract).
    /// @return ok the signature is the host's
    /// @return digest the answer's EIP-712 digest
    function isSignedByHost(Answer calldata a, bytes calldata signature)
        external
        view
        returns (bool ok, bytes32 digest)
    {
        digest = answerDigest(a);
        ok = SignatureChecker.isValidSignatureNow(a.host, digest, signature);
    }
}
