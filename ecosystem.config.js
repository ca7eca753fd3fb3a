// pm2 process file: `npx pm2 start ecosystem.config.js`.
// The appliance calls process.send('ready') once every listener is up (wait_ready).
module.exports = {
  apps: [
    {
      name: 'dcmx',
      script: 'dist/server/main.js',
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
