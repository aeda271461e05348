'use strict';
module.exports = {
  ...require('./protocol'),
  ...require('./wellformed'),
  ...require('./producer'),
  ...require('./consumer'),
  ...require('./connect'),
};
