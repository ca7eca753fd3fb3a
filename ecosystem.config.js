// pm2 process file: `npx pm2 start ecosystem.config.js`.
// The appliance calls process.send('ready') once every listener is up (wait_ready).
const fs = require('node:fs');
const path = require('node:path');

// The Node.js npm scripts run on: node_modules/.bin/node, the Node 24 that `npm ci` brings
// where the system's is older (native/runtime.js), else the system's.
const bundled = path.join(__dirname, 'node_modules', '.bin', 'node');

module.exports = {
  apps: [
    {
      name: 'dcmx',
      script: 'dist/server/main.js',
      interpreter: fs.existsSync(bundled) ? bundled : 'node',
      cwd: __dirname,
      exec_mode: 'fork',
      instances: 1, // one process owns the SQLite store
      wait_ready: true,
      listen_timeout: 20000,
      kill_timeout: 12000,
      autorestart: true,
      max_restarts: 10,
      // The DCMX_* variables of the environment pm2 is started from apply (see README);
      // unset, the data lives in ./data next to this file.
      env: {
        NODE_ENV: 'production',
      },
    },
  ],
};
