#!/usr/bin/env node
// Builds every native addon (native/build.js); kept under this name for the npm scripts and
// the commands that name it.
'use strict';
require('../build.js');
