"""The human's review page (`flash-mcp review`): proposals to approve or deny, runs, spend and the audit trail,
on loopback, behind a one-time login link printed in the human's terminal."""
