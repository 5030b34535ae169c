// The AddressSpace module: under construction; see shared/design/ARCHITECTURE.md.
