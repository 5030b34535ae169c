// The PageTables module: under construction; see shared/design/ARCHITECTURE.md.
