// The consumer-group APIs, all served by one GroupCoordinator: main.ts builds the coordinator and registers
// these handlers with it.
import type { GroupCoordinator } from '../group/coordinator.ts';
import { createDeleteGroupsHandler } from './delete-groups.ts';
import { createDescribeGroupsHandler } from './describe-groups.ts';
import { createFindCoordinatorHandler, thisNodeCoordinates } from './find-coordinator.ts';
import type { CoordinatorNodeLookup } from './find-coordinator.ts';
import { createHeartbeatHandler } from './heartbeat.ts';
import { createJoinGroupHandler } from './join-group.ts';
import { createLeaveGroupHandler } from './leave-group.ts';
import { createListGroupsHandler } from './list-groups.ts';
import { createOffsetCommitHandler } from './offset-commit.ts';
import { createOffsetDeleteHandler } from './offset-delete.ts';
import { createOffsetFetchHandler } from './offset-fetch.ts';
import { createSyncGroupHandler } from './sync-group.ts';
import type { ApiHandler } from './types.ts';

export interface GroupHandlerOptions {
  /** Which node FindCoordinator names; default: the node answering (single-node mode). */
  coordinatorNode?: CoordinatorNodeLookup;
}

/** FindCoordinator, the group membership APIs and the group offset/admin APIs, in api key order. */
export function createGroupHandlers(coordinator: GroupCoordinator, options: GroupHandlerOptions = {}): ApiHandler[] {
  return [
    createOffsetCommitHandler(coordinator),
    createOffsetFetchHandler(coordinator),
    createFindCoordinatorHandler(options.coordinatorNode ?? thisNodeCoordinates),
    createJoinGroupHandler(coordinator),
    createHeartbeatHandler(coordinator),
    createLeaveGroupHandler(coordinator),
    createSyncGroupHandler(coordinator),
    createDescribeGroupsHandler(coordinator),
    createListGroupsHandler(coordinator),
    createDeleteGroupsHandler(coordinator),
    createOffsetDeleteHandler(coordinator),
  ];
}
