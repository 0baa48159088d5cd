/** Every bit flip, truncation and trailing byte of a 1 KiB message, suite 0x0478 (see bitflip.ts). */
import { bitFlipSuite } from './bitflip.js';

bitFlipSuite(0x0478);
