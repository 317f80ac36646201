// warren/amqplib, the drop-in for amqplib, driven by exactly the amqplib adapter's code: the only change is the
// module, as it is for an application that switches its import. Loaded from the build, like bench/libs/warren.ts.

import type * as WarrenAmqplib from '../../src/amqplib/index.js';
import { amqplibAdapter } from './amqplib.js';

// A computed specifier keeps tsc from resolving a module that may not be built yet.
const specifier: string = '../../dist/esm/amqplib/index.js';
const warrenAmqplib = (await import(specifier)) as typeof WarrenAmqplib;

export default amqplibAdapter('warren-amqplib', warrenAmqplib);
