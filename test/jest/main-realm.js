/**
 * Loaded by Node's own require (outside jest's vm context), so the arrays it builds belong to
 * Node's realm: a library loaded the same way that checks `x instanceof Array` accepts them.
 */
exports.toMainRealmArray = (items) => Array.from(items);
