"""The local plane: environments pushed to this machine, runs trained here with TRL + PEFT."""
