/**
 * Assembles the appliance's web console (index.ts) from its route groups:
 * the dashboard's (dashboard.ts), the domains' and mailboxes' (domains.ts)
 * and the queue's (queue.ts).
 */
import type { Directory } from '../../directory/directory';
import { MailDirectory } from '../../directory/mail';
import type { RoutingTable } from '../../directory/routing';
import type { DirectoryWriter } from '../../directory/writes';
import type { Zones } from '../../directory/zones';
import type { Logger } from '../../log';
import { storeHealth } from '../http';
import { dashboardRoutes, type DashboardFigures } from './dashboard';
import { domainRoutes } from './domains';
import { queueRoutes } from './queue';
import type { QueueAdmin } from '../../mta/queue-admin';
import { Console } from './index';
import type { SessionLimits } from './sessions';

/** What the appliance hands the console: its main thread's parts. */
export interface ConsoleParts {
  /** The writable directory. */
  directory: Directory;
  zones: Zones;
  /** The one writer (every change of the console is a command to it). */
  writer: DirectoryWriter;
  /** The routing table of the thread that delivers. */
  routing: RoutingTable;
  /** The queue tools over the appliance's queue (server/mta/queue-admin.ts). */
  queue: QueueAdmin;
  /** The process's figures (GET /stats). */
  stats: () => Promise<DashboardFigures>;
  /** The serving endpoints' address and ports. */
  endpoints: () => { listen: string; ports: { ldap: number; dns: number; smtp: number } };
}

/** The appliance's console. */
export function startConsole(p: ConsoleParts, sessions: SessionLimits, log: Logger): Console {
  const mail = new MailDirectory(p.directory, p.zones.names);
  return new Console({
    directory: p.directory,
    mail,
    sessions,
    routes: [
      dashboardRoutes({ directory: p.directory, mail, stats: p.stats, health: () => storeHealth(p.directory), endpoints: p.endpoints }),
      domainRoutes({ directory: p.directory, mail, zones: p.zones, routing: p.routing, writer: p.writer }),
      queueRoutes(p.queue),
    ],
  }, log);
}
