// The D-Bus front door's public surface (DESIGN.md §4).
export { DbusService, type DbusServiceOptions } from './service.js';
export { MmsClient, type MessageProperties, type ManagerProperties } from './client.js';
export * from './names.js';
export type { BusKind } from './bus.js';
