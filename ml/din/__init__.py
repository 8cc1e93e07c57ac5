"""DIN's ML half: data shards, the model and its canonical bytes, local training (a Flower
NumPyClient), bit-reproducible fixed-point aggregation, pairwise-mask secure aggregation, and
contribution scoring. Chain-free: the on-chain agents call these modules.

    data       digits dataset, Dirichlet non-IID shards, owner test set + its keccak commitment
    model      the MLP, canonical safetensors bytes, parameter layout
    client     DinClient (flwr.client.NumPyClient), fit_update() (any client, layout-checked), device choice
    client_loader  a participant's own NumPyClient from `--client module:attr`
    aggregate  fixed-point encode/sum/decode; subgroup aggregate; global combination
    secagg     X25519 pairwise masks in Z_2^64, dropout recovery (Bonawitz et al. 2017, simplified)
    scoring    per-participant and per-subgroup scores in [0, 1] on the owner's test set
"""
