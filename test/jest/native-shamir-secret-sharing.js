const { join } = require('node:path');
const nativeRequire = require('./native-module');

// The library checks `shares instanceof Array`; an array built inside jest's vm context is
// another realm's, so the shares are copied into a Node-realm array first.
const shamir = nativeRequire('shamir-secret-sharing');
const { toMainRealmArray } = nativeRequire(join(__dirname, 'main-realm.js'));

module.exports = {
  ...shamir,
  combine: (shares) => shamir.combine(toMainRealmArray(shares)),
};
