module.exports = require('./native-module')('tweetnacl');
