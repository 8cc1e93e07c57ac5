"""DIN: federated learning coordinated on-chain (agents for the DinTasks/DinRounds/DinScoring contracts)."""
