#!/usr/bin/env node
// Runs the CLI from the last build (npm run build) with oclif's development settings.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
