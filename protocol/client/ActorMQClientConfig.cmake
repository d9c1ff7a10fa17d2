# SPDX-License-Identifier: Apache-2.0
# find_package(ActorMQClient) gives the target ActorMQ::client (docs/client.md).
include(CMakeFindDependencyMacro)
find_dependency(Threads)
include(${CMAKE_CURRENT_LIST_DIR}/ActorMQClientTargets.cmake)
