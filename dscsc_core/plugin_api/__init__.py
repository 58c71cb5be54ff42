"""The plugin API: declared parameters, the contracts of every plugin kind, the hooks and the registry."""
