/**
 * libp2p 3 and its helpers call `Promise.withResolvers` (ES2024), which Node 20 lacks: without it
 * the Noise handshake fails with `EncryptionFailedError` and the dialer sees `ECONNRESET`
 * (TOOLCHAIN.md pitfall 3). `src/index.ts` imports this module before anything that loads libp2p,
 * so importing `@bftrc/libp2p-transport` is enough. The calls happen at run time, not at module
 * load, so installing it before the first node starts suffices.
 */
interface Resolvers<T> {
  promise: Promise<T>
  resolve: (value: T | PromiseLike<T>) => void
  reject: (reason?: unknown) => void
}

const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }
if (typeof P.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new this<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    },
  })
}

export {}
