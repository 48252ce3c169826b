"""Spend safety: budgets, approvals, proposals and the audit trail."""
