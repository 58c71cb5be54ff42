"""Many runs: repeated seeds with stored records, and label-free tuning over candidate settings."""
