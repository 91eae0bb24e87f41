// Typed events for the parts' emitters (the outbox, the driver, its health monitor): a map of event
// name → the arguments its listeners get, so that a wrong event name or payload does not compile.
// Node's own generic EventEmitter<T> still takes any name (its EventNames<T, E> admits E itself).
import { EventEmitter } from 'node:events';

/** An event map: each event name to the tuple of its listeners' arguments. */
export type EventsOf<E> = { [K in keyof E]: unknown[] };

type Name<E> = keyof E & string;

/** The listening side, what a part's users see of it. */
export interface Listenable<E extends EventsOf<E>> {
  /** Type-only, never set: lets a function infer the event map from a part (harness `nextEvent`). */
  readonly eventMap?: E;
  on<K extends Name<E>>(event: K, listener: (...args: E[K]) => void): this;
  once<K extends Name<E>>(event: K, listener: (...args: E[K]) => void): this;
  off<K extends Name<E>>(event: K, listener: (...args: E[K]) => void): this;
}

/** The emitting side too: Node's EventEmitter, narrowed to the names and payloads of `E`. */
export interface TypedEmitter<E extends EventsOf<E>> extends Listenable<E> {
  emit<K extends Name<E>>(event: K, ...args: E[K]): boolean;
  listenerCount<K extends Name<E>>(event: K): number;
  removeAllListeners<K extends Name<E>>(event?: K): this;
}

/** `class Outbox extends TypedEmitter<OutboxEvents>`: a plain EventEmitter at run time. */
export const TypedEmitter = EventEmitter as unknown as new <E extends EventsOf<E>>() => TypedEmitter<E>;
