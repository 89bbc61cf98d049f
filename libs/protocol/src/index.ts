// @app/protocol: the device protocol shared by the API and the edge processes (docs/protocol.md),
// with the name patterns, address checks and task queue both sides must agree on.
export * from './kura-payload';
export * from './kura-payload.codec';
export * from './ip-address';
export * from './topics';
export * from './metrics';
export * from './vpn-status';
export * from './vpn-profile';
export * from './requests';
export * from './birth';
export * from './mqtt-socket';
export * from './gateway';
export * from './serial-queue';
