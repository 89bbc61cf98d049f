'use strict';
module.exports = require('./fleet').fleetScenario('mosquitto');
