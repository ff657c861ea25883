// Open MPI's predefined handles are casts of addresses of globals, which Swift cannot import.
// These inline functions return them; Collectives wraps them as Swift properties.
#ifndef PSKD_CMPI_SHIM_H
#define PSKD_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm pskd_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm pskd_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype pskd_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype pskd_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype pskd_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype pskd_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype pskd_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype pskd_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op pskd_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op pskd_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op pskd_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op pskd_mpi_lor(void) { return MPI_LOR; }
static inline void *pskd_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *pskd_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler pskd_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

#endif
