// js-ipfs 0.66 (via its libp2p deps) calls Promise.withResolvers, which Node 20 lacks.
// Loaded with `node --require ./polyfill.cjs` before the daemon starts.
'use strict';
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
