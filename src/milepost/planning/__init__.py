"""Planning aids (SPEC §4): templates, the split helper, plan lint and relationship history."""
