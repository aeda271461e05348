'use strict';
module.exports = {
  ...require('./protocol'),
  ...require('./producer'),
  ...require('./consumer'),
};
