"""The domain's vocabulary: records, enums, filters and exceptions that every layer shares. No I/O."""
