// The entry of dist/cartwise.min.js: the page's tracker as window.cartwise.
import cartwise from './index.mjs';

globalThis.cartwise = cartwise;
