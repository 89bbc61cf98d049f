// testTimeout is a global Jest option, not a per-project one; each tier sets its own here.
jest.setTimeout(60_000);
