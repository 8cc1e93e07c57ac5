"""OML 1.0 protocol agents: platform (permissions), host (serves the model), prover, verifier."""
