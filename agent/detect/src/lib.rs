//! The pure detector stages (being moved here from the agent).
