"""OML 1.0: fingerprint generation, injection, checking and the on-chain commitment format."""
