// warren/amqplib, the drop-in for amqplib, driven by exactly the amqplib adapter's code: the only change is the
// module, as it is for an application that switches its import.

import * as warrenAmqplib from '../../src/amqplib/index.js';
import { amqplibAdapter } from './amqplib.js';

export default amqplibAdapter('warren-amqplib', warrenAmqplib);
